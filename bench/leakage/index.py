"""Per-image leakage facts of one dataset at one threshold, computed once and cached.

For every test image: the similarity of its nearest training image (any orientation) and
whether it is clean (its duplicate group holds no training image). For every training image:
its duplicate group, so that a validation split can keep groups whole.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.audit.audit import DEFAULT_THRESHOLD, nearest_training_images
from bench.data.discover import DatasetIndex
from bench.errors import BrainbenchError
from bench.io import write_atomically
from bench.leakage.bands import BAND_KEYS, band_masks
from bench.leakage.groups import duplicate_groups
from bench.leakage.pictures import audit_pictures

# The audit's duplicate threshold. Lower ones leave too few test images: at 0.95 the clean test
# split of the Kaggle dataset has 173 images and no notumor image at all.
DEFAULT_CLEAN_THRESHOLD = DEFAULT_THRESHOLD
FORMAT_VERSION = 3  # 3: records the label set's class names


@dataclass(frozen=True)
class LeakageIndex:
    threshold: float
    test_similarity: dict[str, float]  # test rel -> similarity of its nearest training image
    test_label: dict[str, str]
    clean_test: frozenset[str]  # test rels whose duplicate group has no training image
    train_group: dict[str, int]  # training rel -> duplicate group id
    class_names: tuple[str, ...]  # the dataset's label set (DatasetIndex.labels.names), in label order

    def similarities(self, rels: list[str]) -> np.ndarray:
        return np.array([self._known(self.test_similarity, rel) for rel in rels], dtype=np.float64)

    def clean_mask(self, rels: list[str]) -> np.ndarray:
        for rel in rels:
            self._known(self.test_similarity, rel)
        return np.array([rel in self.clean_test for rel in rels], dtype=bool)

    def groups(self, rels: list[str]) -> np.ndarray:
        return np.array([self._known(self.train_group, rel) for rel in rels], dtype=np.int64)

    @staticmethod
    def _known(table: dict, rel: str):
        try:
            return table[rel]
        except KeyError:
            raise BrainbenchError(f"{rel} is not in the leakage index of this dataset "
                                  "(was the dataset changed during the run?)") from None

    def record(self) -> dict:
        """What results.json says about the official test split's leakage and the clean split."""
        rels = list(self.test_similarity)
        similarity = self.similarities(rels)
        duplicated = len(rels) - len(self.clean_test)
        clean_classes = Counter(self.test_label[rel] for rel in self.clean_test)
        test_classes = Counter(self.test_label.values())
        return {
            "threshold": self.threshold,
            "n_test": len(rels),
            "n_test_duplicated": duplicated,
            "test_duplicated_share": duplicated / len(rels) if rels else None,
            "n_clean_test": len(self.clean_test),
            "clean_test_per_class": {c: clean_classes.get(c, 0) for c in self.class_names},
            "official_test_per_class": {c: test_classes.get(c, 0) for c in self.class_names},
            "band_counts": {key: int(mask.sum()) for key, mask in zip(BAND_KEYS, band_masks(similarity))},
            "n_train_groups": len(set(self.train_group.values())),
            "n_train": len(self.train_group),
        }


def build_leakage_index(index: DatasetIndex, fingerprint: str, threshold: float, cache_root: Path) -> LeakageIndex:
    """Compute (or load from the cache) the leakage index of a dataset at `threshold`; its test
    labels are named by the dataset's own label set."""
    if not 0.0 < threshold <= 1.0:
        raise BrainbenchError(f"clean-split threshold must be in (0, 1], got {threshold}")
    class_names = tuple(index.labels.names)
    path = Path(cache_root) / f"leakage-{fingerprint}-t{threshold:g}.json"
    cached = _load(path, threshold, class_names)
    if cached is not None:
        return cached
    train, test = audit_pictures(index, fingerprint, cache_root)
    matches = nearest_training_images(test, train, threshold, class_names)
    pixels = np.concatenate([train.pixels, test.pixels])
    groups = duplicate_groups(pixels, train.sha256 + test.sha256, threshold)
    train_groups, test_groups = groups[:len(train)], groups[len(train):]
    has_train_member = set(train_groups.tolist())
    leakage = LeakageIndex(
        threshold=threshold,
        test_similarity={m.a_rel: m.similarity for m in matches},
        test_label={m.a_rel: m.a_label for m in matches},
        clean_test=frozenset(rel for rel, g in zip(test.rels, test_groups.tolist()) if g not in has_train_member),
        train_group=dict(zip(train.rels, train_groups.tolist())),
        class_names=class_names)
    _save(path, leakage)
    return leakage


def _save(path: Path, leakage: LeakageIndex) -> None:
    data = {"format": FORMAT_VERSION, "threshold": leakage.threshold,
            "test_similarity": leakage.test_similarity,
            "test_label": leakage.test_label, "clean_test": sorted(leakage.clean_test),
            "train_group": leakage.train_group, "class_names": list(leakage.class_names)}
    write_atomically(path, json.dumps(data).encode())


def _load(path: Path, threshold: float, class_names: tuple[str, ...]) -> LeakageIndex | None:
    """The cached index; None when there is none, when it was written by another format, at
    another threshold or under another label set (the same folder declared with other classes),
    or (with a warning naming the file) when it is damaged: compute it again."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if (data.get("format") != FORMAT_VERSION or data.get("threshold") != threshold
                or data.get("class_names") != list(class_names)):
            return None
        return LeakageIndex(threshold, {str(k): float(v) for k, v in data["test_similarity"].items()},
                            {str(k): str(v) for k, v in data["test_label"].items()},
                            frozenset(str(rel) for rel in data["clean_test"]),
                            {str(k): int(v) for k, v in data["train_group"].items()}, class_names)
    # Bad UTF-8 or JSON (ValueError), a missing key, or values of the wrong type.
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        logging.getLogger("brainbench").warning("leakage index cache %s is damaged (%s: %s); computing it again",
                                                path, type(error).__name__, error)
        return None
