"""Run the audit: load both splits, find nearest neighbours, classify every match.

Kinds of match, from strongest to weakest evidence:
- exact: the two files have the same bytes (sha256).
- identical-pixels: different files, same pixels after decoding to 64 px grey.
- flipped: similarity >= threshold in a mirrored orientation.
- near: similarity >= threshold as is (resized, re-encoded, brightness or contrast changed).
- none: below the threshold; not counted as a duplicate.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.audit.load import AuditSplit, load_split
from bench.audit.match import ORIENTATIONS, Nearest, nearest
from bench.data.discover import DatasetIndex
from bench.errors import DatasetError

DEFAULT_THRESHOLD = 0.99
KINDS = ("exact", "identical-pixels", "flipped", "near", "none")
DUPLICATE_KINDS = KINDS[:-1]


@dataclass(frozen=True)
class Match:
    """One image (a) and its nearest image (b), in the other split or in its own."""
    a_rel: str
    a_label: str
    b_rel: str
    b_label: str
    similarity: float
    orientation: str  # how a was turned to match b
    kind: str

    @property
    def is_duplicate(self) -> bool:
        return self.kind != "none"

    @property
    def labels_disagree(self) -> bool:
        return self.is_duplicate and self.a_label != self.b_label


@dataclass
class AuditResult:
    index: DatasetIndex
    threshold: float
    train: AuditSplit
    test: AuditSplit
    test_vs_train: list[Match]  # one per test image, in test file order
    within: dict[str, list[Match]]  # "train"/"test" -> duplicate pairs inside that split, each once
    label_conflicts: list[tuple[str, Match]]  # ("test-train" | "train-train" | "test-test", pair)
    skipped: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def conflicts(self) -> list[tuple[str, Match]]:
        """Duplicate pairs whose labels disagree, with where they were found."""
        return self.label_conflicts


def _kind(a: AuditSplit, i: int, b: AuditSplit, j: int, similarity: float, orientation: int,
          threshold: float) -> str:
    if a.sha256[i] == b.sha256[j]:
        return "exact"
    if similarity < threshold:
        return "none"
    if orientation != 0:
        return "flipped"
    return "identical-pixels" if np.array_equal(a.pixels[i], b.pixels[j]) else "near"


def _match(a: AuditSplit, i: int, b: AuditSplit, j: int, similarity: float, orientation: int,
           threshold: float, class_names: Sequence[str]) -> Match:
    """class_names: the dataset's label set, which the splits' integer labels index."""
    kind = _kind(a, i, b, j, similarity, orientation, threshold)
    if kind == "exact":  # same bytes: the cosine could be 0 for a blank picture, but it is a copy
        similarity, orientation = 1.0, 0
    return Match(a.rels[i], class_names[a.labels[i]], b.rels[j], class_names[b.labels[j]],
                 float(similarity), ORIENTATIONS[orientation], kind)


def _first_by_hash(split: AuditSplit) -> dict[str, int]:
    first: dict[str, int] = {}
    for i, digest in enumerate(split.sha256):
        first.setdefault(digest, i)
    return first


def nearest_training_images(test: AuditSplit, train: AuditSplit, threshold: float,
                            class_names: Sequence[str]) -> list[Match]:
    """Every test image with its nearest training image (any orientation), in test file order;
    labels are named by `class_names`, the dataset's label set."""
    return _test_vs_train(test, train, nearest(test.pixels, train.pixels), threshold, class_names)


def _test_vs_train(test: AuditSplit, train: AuditSplit, near: Nearest, threshold: float,
                   class_names: Sequence[str]) -> list[Match]:
    # A byte-identical file wins over the cosine neighbour: it is the stronger evidence.
    by_hash = _first_by_hash(train)
    matches = []
    for i in range(len(test)):
        j = by_hash.get(test.sha256[i])
        if j is not None:
            matches.append(_match(test, i, train, j, 1.0, 0, threshold, class_names))
        else:
            matches.append(_match(test, i, train, int(near.index[i]), near.similarity[i],
                                  int(near.orientation[i]), threshold, class_names))
    return matches


def _positions_by_hash(split: AuditSplit) -> dict[str, list[int]]:
    """Positions of byte-identical files, grouped by their sha256."""
    groups: dict[str, list[int]] = {}
    for i, digest in enumerate(split.sha256):
        groups.setdefault(digest, []).append(i)
    return groups


def _within(split: AuditSplit, near: Nearest, threshold: float, class_names: Sequence[str]) -> list[Match]:
    """Duplicate pairs inside one split, each unordered pair once."""
    groups = _positions_by_hash(split)
    seen: set[tuple[int, int]] = set()
    pairs = []
    for i in range(len(split)):
        # Every extra copy of a file pairs with the group's first member, so all copies are listed.
        group = groups[split.sha256[i]]
        if len(group) > 1:
            j, sim, orient = (group[1] if i == group[0] else group[0]), 1.0, 0
        elif near.index[i] >= 0:
            j, sim, orient = int(near.index[i]), float(near.similarity[i]), int(near.orientation[i])
        else:
            continue
        key = (min(i, j), max(i, j))
        if key in seen:
            continue
        match = _match(split, i, split, j, sim, orient, threshold, class_names)
        if match.is_duplicate:
            seen.add(key)
            pairs.append(match)
    return pairs


def _conflicts(a: AuditSplit, b: AuditSplit, threshold: float, class_names: Sequence[str]) -> list[Match]:
    """For each image of `a`, its nearest duplicate in `b` that carries another label, if any.

    Searched separately from the nearest neighbour: an image with copies under two labels
    usually has a same-label copy nearest, which would hide the conflict.
    """
    same_set = a is b
    other = nearest(a.pixels, b.pixels, same_set=same_set, query_labels=a.labels, reference_labels=b.labels)
    by_hash = _positions_by_hash(b)
    seen: set[tuple[int, int]] = set()
    found = []
    for i in range(len(a)):
        copies = [j for j in by_hash.get(a.sha256[i], []) if a.labels[i] != b.labels[j]]
        if copies:
            j, sim, orient = copies[0], 1.0, 0
        elif other.index[i] >= 0:
            j, sim, orient = int(other.index[i]), float(other.similarity[i]), int(other.orientation[i])
        else:
            continue
        key = (min(i, j), max(i, j)) if same_set else (i, j)
        match = _match(a, i, b, j, sim, orient, threshold, class_names)
        if match.is_duplicate and key not in seen:
            seen.add(key)
            found.append(match)
    return found


def run_audit(index: DatasetIndex, threshold: float = DEFAULT_THRESHOLD) -> AuditResult:
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    seconds: dict[str, float] = {}
    skipped: list[dict] = []
    clock = time.perf_counter()
    train = load_split("train", index.train, skipped)
    test = load_split("test", index.test, skipped)
    seconds["decode_and_hash"] = time.perf_counter() - clock
    for split in (train, test):
        if len(split) == 0:
            raise DatasetError(f"no readable image is left in the {split.name} split of {index.root}")

    clock = time.perf_counter()
    names = index.labels.names
    cross = nearest_training_images(test, train, threshold, names)
    within = {split.name: _within(split, nearest(split.pixels, split.pixels, same_set=True), threshold, names)
              for split in (train, test)}
    conflicts = [(f"{a.name}-{b.name}", m) for a, b in ((test, train), (train, train), (test, test))
                 for m in _conflicts(a, b, threshold, names)]
    seconds["compare"] = time.perf_counter() - clock
    return AuditResult(index, threshold, train, test, cross, within, conflicts, skipped, seconds)
