"""From a dataset folder to decoded tensors: discover, fingerprint, decode once, split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.cache import DecodedDataset, DecodedSplit, Preprocessing, load_or_build
from bench.data.discover import DatasetIndex, discover
from bench.data.fingerprint import dataset_fingerprint
from bench.data.splits import stratified_group_split, stratified_split
from bench.paths import decoded_cache_dir

if TYPE_CHECKING:
    from bench.leakage.index import LeakageIndex


@dataclass
class LoadedDataset:
    index: DatasetIndex
    fingerprint: str
    decoded: DecodedDataset
    # Set for the leak-free split: validation then keeps duplicate groups whole, and the
    # checkpoint key says so (bench.identity.data_key: the model differs from the official split's).
    clean_split: LeakageIndex | None = None

    def train_val_split(self, val_fraction: float, seed: int) -> tuple[DecodedSplit, DecodedSplit]:
        """Validation carved out of Training; on the clean split, duplicate groups stay whole."""
        train = self.decoded.train
        if self.clean_split is None:
            return train_val_split(train, val_fraction, seed)
        groups = self.clean_split.groups(train.paths)
        kept, held = stratified_group_split(train.labels.tolist(), groups.tolist(), val_fraction, seed)
        return subset(train, kept), subset(train, held)

    def record(self) -> dict:
        """What results and manifests say about the data: where, which files, what was skipped."""
        return {
            **self.index.record(),
            "fingerprint": self.fingerprint,
            "preprocessing": self.decoded.preprocessing.__dict__,
            "n_train_images": len(self.decoded.train),
            "n_test_images": len(self.decoded.test),
            "n_unreadable_skipped": len(self.decoded.skipped),
            "unreadable_skipped": self.decoded.skipped,
        }


def load_dataset(root: Path | str, prep: Preprocessing, cache_root: Path | str | None = None) -> LoadedDataset:
    index = discover(root)
    fingerprint = dataset_fingerprint(index)
    decoded = load_or_build(index, fingerprint, prep, decoded_cache_dir(cache_root))
    return LoadedDataset(index, fingerprint, decoded)


def subset(split: DecodedSplit, positions: list[int]) -> DecodedSplit:
    return DecodedSplit(split.images[positions], split.labels[positions], [split.paths[i] for i in positions])


def train_val_split(train: DecodedSplit, val_fraction: float, seed: int) -> tuple[DecodedSplit, DecodedSplit]:
    """Carve the validation split out of Training (seeded, stratified); Testing is never touched."""
    kept, held = stratified_split(train.labels.tolist(), val_fraction, seed)
    return subset(train, kept), subset(train, held)
