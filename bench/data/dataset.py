"""From a dataset folder to decoded tensors: discover, fingerprint, decode once, split by protocol.

Images are decoded once per preprocessing (cache.py) in the dataset's own order; a protocol's
fold is then a view: its training and test sides are picked out of the decoded pool by path, so
five folds cost one decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from bench.data.cache import DecodedDataset, DecodedSplit, Preprocessing, load_or_build
from bench.data.discover import DatasetIndex, discover
from bench.data.fingerprint import dataset_fingerprint
from bench.data.labels import LabelSet
from bench.data.protocols import Fold, ProtocolSpec, validation_split
from bench.data.splits import stratified_group_split, stratified_split
from bench.paths import decoded_cache_dir

if TYPE_CHECKING:
    from bench.leakage.index import LeakageIndex


@dataclass(frozen=True)
class SplitView:
    """Which protocol and fold a view is, and what its validation split must keep whole."""

    spec: ProtocolSpec
    fold: Fold
    groups: dict[str, str] | None = None  # rel -> group (patient, duplicate group); None: images alone
    # Set where the groups were computed from the images (patients, duplicates) rather than read from
    # a column the fingerprint covers: a digest of which image went where in which group, so that a
    # new patient map or matching rule makes a new key instead of reusing a model that saw test images.
    membership: str = ""

    def key(self) -> str:
        """The data-key suffix: "" for the official protocol, so its checkpoints keep their keys."""
        key = self.fold.key(self.spec.key())
        return f"{key}-m{self.membership}" if key and self.membership else key

    def record(self) -> dict:
        return {"protocol": self.spec.record(), "fold": self.fold.number, "n_folds": self.fold.n_folds,
                "n_train": len(self.fold.train), "n_test": len(self.fold.test),
                "groups_kept_whole": self.groups is not None}


@dataclass
class LoadedDataset:
    index: DatasetIndex
    fingerprint: str
    decoded: DecodedDataset  # train and test: the two sides of `split` (the official ones when it is None)
    # Set for the leak-free split: validation then keeps duplicate groups whole, and the
    # checkpoint key says so (bench.identity.data_key: the model differs from the official split's).
    clean_split: LeakageIndex | None = None
    split: SplitView | None = None

    @property
    def labels(self) -> LabelSet:
        return self.index.labels

    def train_val_split(self, val_fraction: float, seed: int) -> tuple[DecodedSplit, DecodedSplit]:
        """Validation carved out of the training side; groups (patients, duplicates) stay whole."""
        train = self.decoded.train
        if self.clean_split is not None:
            groups = self.clean_split.groups(train.paths)
            kept, held = stratified_group_split(train.labels.tolist(), groups.tolist(), val_fraction, seed)
        elif self.split is not None and self.split.groups is not None:
            groups = [self.split.groups[rel] for rel in train.paths]
            kept, held = validation_split(train.labels.tolist(), groups, val_fraction, seed)
        else:
            kept, held = stratified_split(train.labels.tolist(), val_fraction, seed)
        return subset(train, kept), subset(train, held)

    def record(self) -> dict:
        """What results and manifests say about the data: where, which files, what was skipped."""
        record = {
            **self.index.record(),
            "fingerprint": self.fingerprint,
            "preprocessing": self.decoded.preprocessing.__dict__,
            "n_train_images": len(self.decoded.train),
            "n_test_images": len(self.decoded.test),
            "n_unreadable_skipped": len(self.decoded.skipped),
            "unreadable_skipped": self.decoded.skipped,
        }
        return record | ({"split": self.split.record()} if self.split is not None else {})


def fold_view(decoded: DecodedDataset, index: DatasetIndex, split: SplitView) -> DecodedDataset:
    """The decoded images of one fold's sides. Fold positions index `index.samples`; images the
    decoder could not read are in no side (they were skipped, and listed, when the cache was built)."""
    if split.spec.kind == "official":
        return decoded  # the official sides are the decoded train and test already
    pool = DecodedSplit(torch.cat([decoded.train.images, decoded.test.images]),
                        torch.cat([decoded.train.labels, decoded.test.labels]),
                        decoded.train.paths + decoded.test.paths)
    row_of = {rel: row for row, rel in enumerate(pool.paths)}

    def side(positions: tuple[int, ...]) -> DecodedSplit:
        rels = (index.samples[p].rel for p in positions)
        return subset(pool, [row_of[rel] for rel in rels if rel in row_of])

    return DecodedDataset(side(split.fold.train), side(split.fold.test), decoded.skipped,
                          decoded.preprocessing, decoded.cache_dir)


def load_dataset(root: Path | str, prep: Preprocessing, cache_root: Path | str | None = None,
                 declaration: str | None = None, split: SplitView | None = None) -> LoadedDataset:
    """One view of a dataset: the official sides, or `split`'s fold of them."""
    index = discover(root, declaration)
    fingerprint = dataset_fingerprint(index)
    decoded = load_or_build(index, fingerprint, prep, decoded_cache_dir(cache_root))
    if split is not None:
        decoded = fold_view(decoded, index, split)
    return LoadedDataset(index, fingerprint, decoded, split=split)


def subset(split: DecodedSplit, positions: list[int]) -> DecodedSplit:
    return DecodedSplit(split.images[positions], split.labels[positions], [split.paths[i] for i in positions])


def train_val_split(train: DecodedSplit, val_fraction: float, seed: int) -> tuple[DecodedSplit, DecodedSplit]:
    """Carve the validation split out of Training (seeded, stratified); Testing is never touched."""
    kept, held = stratified_split(train.labels.tolist(), val_fraction, seed)
    return subset(train, kept), subset(train, held)
