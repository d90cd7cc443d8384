"""Score a trained model on external test sets, and audit those sets against the training split.

The overlap audit runs once per set and run (the same matcher as `brainbench audit`); decoded
images are kept per preprocessing, so twenty entries at one input size decode each set once.
Scores are given on the whole set and on its images that do not repeat a training image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench.audit.load import AuditSplit, load_split
from bench.audit.match import nearest
from bench.crossdata.external_set import ExternalSet
from bench.crossdata.folders import discover_external
from bench.data.batches import Normalizer
from bench.data.cache import Preprocessing, decode_all
from bench.data.labels import LabelSet
from bench.errors import DatasetError
from bench.evaluate.predict import predict_logits
from bench.evaluate.subset_metrics import present_class_metrics
from bench.train.loop import autocast_dtype_for
from zoo.entry import ZooEntry


@dataclass
class DecodedExternal:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: list[int]  # indices into the set's task classes (ExternalSet.classes)
    rels: list[str]


@dataclass
class AuditedExternal:
    """One external set and, per image, whether it repeats a training image."""
    data: ExternalSet
    overlap: dict[str, bool]  # rel -> repeats a training image (>= threshold, any orientation, or same bytes)
    threshold: float
    skipped: list[dict] = field(default_factory=list)

    def is_new(self, rel: str) -> bool:
        """Audited and repeating no training image. An image the audit could not read is not
        known to be new, so it never counts as new."""
        return rel in self.overlap and not self.overlap[rel]

    def record(self) -> dict:
        n = len(self.overlap)
        n_overlap = sum(self.overlap.values())
        return self.data.record() | {"overlap_threshold": self.threshold, "n_audited": n,
                                     "n_repeating_training_image": n_overlap,
                                     "n_new_to_training": n - n_overlap,
                                     "n_not_audited": len(self.data.samples) - n,
                                     "repeating_share": n_overlap / n if n else None,
                                     "unreadable_skipped": self.skipped}


def audit_external(data: ExternalSet, train: AuditSplit, threshold: float) -> AuditedExternal:
    skipped: list[dict] = []
    pictures = load_split("external", data.samples, skipped)
    near = nearest(pictures.pixels, train.pixels)
    train_hashes = set(train.sha256)
    overlap = {rel: bool(sim >= threshold or digest in train_hashes)
               for rel, sim, digest in zip(pictures.rels, near.similarity.tolist(), pictures.sha256)}
    return AuditedExternal(data, overlap, threshold, skipped)


class ExternalSets:
    """The run's external sets: found and audited once, decoded once per preprocessing.

    model_labels: the label set every entry of the run predicts (the training dataset's): each
    set is labelled in it once, for all entries.
    """

    def __init__(self, roots: list[Path], train: AuditSplit, threshold: float, model_labels: LabelSet,
                 audited_against: str = ""):
        sets = [discover_external(root, model_labels) for root in roots]
        names = [s.name for s in sets]
        for name in set(names):
            if names.count(name) > 1:
                raise DatasetError(f"two --external folders are both named {name!r}; rename one "
                                   "(the folder name names the leaderboard column)")
        self.audited = [audit_external(s, train, threshold) for s in sets]
        # "" for the official training split; else what `train` is (every image, under other protocols)
        self.audited_against = audited_against
        self._decoded: dict[tuple[str, Preprocessing], DecodedExternal] = {}

    def decoded(self, external: ExternalSet, prep: Preprocessing) -> DecodedExternal:
        key = (external.name, prep)
        if key not in self._decoded:
            images, labels, rels, _ = decode_all(external.samples, prep, f"decoding {external.name}")
            self._decoded[key] = DecodedExternal(torch.from_numpy(images), labels.tolist(), rels)
        return self._decoded[key]

    def record(self) -> list[dict]:
        against = self.audited_against or "the official training split"
        return [a.record() | {"audited_against": against} for a in self.audited]

    def key(self) -> str:
        """What decides external scores: which sets, with how many images (for row reuse)."""
        key = ",".join(f"{a.data.name}:{len(a.data.samples)}" for a in self.audited)
        return key + (f"|against:{self.audited_against}" if self.audited_against else "")


def _set_columns(model: torch.nn.Module, entry: ZooEntry, prep: Preprocessing, sets: ExternalSets,
                 audited: AuditedExternal, device: torch.device) -> dict:
    """Metrics of one scorable set: on the whole set and on its images new to the model."""
    decoded = sets.decoded(audited.data, prep)
    logits = predict_logits(model, decoded.images, Normalizer(entry.mean, entry.std, device),
                            channels_last=device.type == "cuda", autocast_dtype=autocast_dtype_for(device))
    labels = np.array(decoded.labels, dtype=np.int64)
    preds = np.array(audited.data.task_predictions(logits.argmax(1).tolist()), dtype=np.int64)
    classes = audited.data.classes
    new = np.array([audited.is_new(rel) for rel in decoded.rels], dtype=bool)
    # Neither scored as new nor as repeating: counted apart, so that no column hides them.
    columns = {"n_unreadable": len(audited.data.samples) - len(decoded.rels),
               "n_not_audited": sum(rel not in audited.overlap for rel in decoded.rels)}
    columns |= present_class_metrics(labels, preds, classes)
    columns |= {"new_" + k: v for k, v in present_class_metrics(labels[new], preds[new], classes).items()
                if k in ("n", "acc", "acc_ci95", "balanced_acc")}
    return columns


def external_columns(model: torch.nn.Module, entry: ZooEntry, prep: Preprocessing, sets: ExternalSets,
                     device: torch.device) -> dict:
    """`ext_<set>_*` columns: metrics on the whole set and on the images new to the model; for a
    set the model cannot be scored on, `ext_<set>_note` says why instead."""
    columns: dict = {}
    for audited in sets.audited:
        prefix = f"ext_{audited.data.name}_"
        columns[prefix + "task"] = audited.data.task
        columns[prefix + "n_not_in_task"] = sum(audited.data.not_in_task.values())
        if audited.data.unscorable is not None:
            columns[prefix + "note"] = audited.data.unscorable
            continue
        columns |= {prefix + k: v for k, v in _set_columns(model, entry, prep, sets, audited, device).items()}
    return columns
