"""Run patient recovery on one dataset against one reference, cached by both fingerprints.

Steps: the audit's pictures of both datasets (decoded once per fingerprint, bench/leakage/
pictures.py), each image's nearest reference slice (recover.py), the threshold from the gap in
their similarities, near-duplicate groups of the unmatched images (groups.py), and each official
test image's nearest training image (for the report's band table). The result is small (one row
per image) and kept as JSON beside the pictures, so a second run only discovers and hashes files.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.audit.audit import DEFAULT_THRESHOLD, Match, nearest_training_images
from bench.audit.load import AuditSplit
from bench.data.discover import DatasetIndex
from bench.data.fingerprint import dataset_fingerprint
from bench.errors import DatasetError
from bench.leakage.pictures import audit_pictures
from bench.patients import cache
from bench.patients.groups import group_unmatched
from bench.patients.recover import at_threshold, combined_classes, nearest_reference, similarity_gap
from bench.patients.reference import Reference
from bench.patients.result import PatientAnalysis, PatientRow, TestNeighbour


def _joined(train: AuditSplit, test: AuditSplit) -> AuditSplit:
    return AuditSplit("dataset", train.rels + test.rels, np.concatenate([train.labels, test.labels]),
                      train.sha256 + test.sha256, np.concatenate([train.pixels, test.pixels]))


def _test_neighbours(test: AuditSplit, train: AuditSplit, names: tuple[str, ...]) -> list[TestNeighbour]:
    """Each official test image's nearest training image; none without an official split."""
    if len(test) == 0 or len(train) == 0:
        return []
    return [TestNeighbour(m.a_rel, m.similarity, m.b_rel, m.a_label == m.b_label)
            for m in nearest_training_images(test, train, DEFAULT_THRESHOLD, names)]


def _row(match: Match, split: str, sha256: str, reference: Reference) -> PatientRow:
    if not match.is_duplicate:
        return PatientRow(match.a_rel, split, match.a_label, sha256, match.similarity, match.orientation,
                          match.kind, "", "", "", "", "", "")
    ref = match.b_rel
    family = reference.pid_family[ref]
    return PatientRow(match.a_rel, split, match.a_label, sha256, match.similarity, match.orientation, match.kind,
                      ref, reference.slice_id[ref], match.b_label, reference.pid[ref], family, f"patient:{family}")


def compute_patients(index: DatasetIndex, reference: Reference, cache_root: Path,
                     threshold: float | None = None, fingerprints: tuple[str, str] | None = None) -> PatientAnalysis:
    """Everything the report needs, computed (no cache read here); `threshold` None: from the gap."""
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    data_fp, ref_fp = fingerprints or (dataset_fingerprint(index), dataset_fingerprint(reference.index))
    train, test = audit_pictures(index, data_fp, cache_root)
    slices, _ = audit_pictures(reference.index, ref_fp, cache_root)  # a reference has no official split
    if len(slices) == 0:
        raise DatasetError(f"reference {reference.root} has no readable image")
    images = _joined(train, test)
    seconds["pictures"] = time.perf_counter() - clock

    clock = time.perf_counter()
    names, position = combined_classes(index.labels, reference.index.labels)
    nearest = nearest_reference(images, slices, names, position)
    gap = similarity_gap(np.array([m.similarity for m in nearest]))
    chosen = gap.threshold if threshold is None else threshold
    matches = [at_threshold(m, chosen) for m in nearest]
    splits = ["train"] * len(train) + ["test"] * len(test)
    rows = [_row(m, split, digest, reference) for m, split, digest in zip(matches, splits, images.sha256)]
    seconds["match"] = time.perf_counter() - clock

    clock = time.perf_counter()
    unmatched = [k for k, row in enumerate(rows) if not row.matched]
    largest_patient = max(Counter(row.pid for row in rows if row.matched).values(), default=0)
    grouping = group_unmatched(images.pixels[unmatched], [images.sha256[k] for k in unmatched],
                               [rows[k].label for k in unmatched], largest_patient)
    for k, number in zip(unmatched, grouping.group):
        rows[k] = dataclasses.replace(rows[k], group=f"dup:{number}")
    seconds["group"] = time.perf_counter() - clock

    clock = time.perf_counter()
    neighbours = _test_neighbours(test, train, index.labels.names)
    seconds["test_vs_train"] = time.perf_counter() - clock

    loaded = set(images.rels)
    return PatientAnalysis(str(index.root), data_fp, str(reference.root), ref_fp, tuple(index.labels.names),
                           len(slices), len(set(reference.pid.values())), len(set(reference.pid_family.values())),
                           chosen, "gap" if threshold is None else "--threshold", gap, rows,
                           neighbours, grouping, [s.rel for s in index.samples if s.rel not in loaded], seconds)


def analyse_patients(index: DatasetIndex, reference: Reference, cache_root: Path,
                     threshold: float | None = None) -> PatientAnalysis:
    """The analysis from the cache when these two datasets (by fingerprint) were analysed at this
    threshold before, else computed and cached; `threshold` None: chosen from the gap."""
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise ValueError(f"a similarity threshold must be in (0, 1], got {threshold}")
    started = time.perf_counter()
    fingerprints = (dataset_fingerprint(index), dataset_fingerprint(reference.index))
    path = cache.cache_file(Path(cache_root), *fingerprints, reference.columns_key(), threshold)
    analysis = cache.load(path)
    if analysis is None:
        analysis = compute_patients(index, reference, cache_root, threshold, fingerprints)
        analysis.seconds["total"] = time.perf_counter() - started
        cache.save(path, analysis)
    else:
        analysis.from_cache = True
        analysis.seconds["this run (cached)"] = time.perf_counter() - started
    return analysis
