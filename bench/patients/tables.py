"""The report's tables, computed from a PatientAnalysis: each function returns (headers, rows)."""

from __future__ import annotations

from collections import Counter, defaultdict

from bench.audit.audit import KINDS
from bench.leakage.bands import BANDS, band_masks
from bench.patients.result import PatientAnalysis, PatientRow

Table = tuple[list[str], list[list]]
# Group-size buckets of the unmatched images: (label, smallest, largest size).
SIZE_BUCKETS = (("1", 1, 1), ("2", 2, 2), ("3-5", 3, 5), ("6-10", 6, 10), ("11-20", 11, 20), ("21-50", 21, 50),
                ("51+", 51, None))


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def matched_per_class(analysis: PatientAnalysis) -> Table:
    """Images with a recovered patient, per class and split, and the kinds of match."""
    rows = []
    for split in ("train", "test"):
        for name in (*analysis.class_names, None):  # None: all classes of the split
            selected = [r for r in analysis.rows if r.split == split and name in (None, r.label)]
            if not selected:
                continue
            kinds = Counter(r.kind for r in selected)
            matched = sum(r.matched for r in selected)
            rows.append([split, name or "all", len(selected), matched, _share(matched, len(selected)),
                         *(kinds[k] for k in KINDS[:-1])])
    return ["split", "class", "images", "with a patient", "share", *KINDS[:-1]], rows


def test_patients_in_training(analysis: PatientAnalysis) -> Table:
    """Official test images whose patient (pid, and pid family) has a training image, and those
    whose very slice (the same reference slice) is in training too."""
    train = [r for r in analysis.rows if r.split == "train" and r.matched]
    pids, families, slices = ({r.pid for r in train}, {r.pid_family for r in train},
                              {r.reference_file for r in train})
    rows = []
    for name in (*analysis.class_names, None):
        test = [r for r in analysis.rows if r.split == "test" and r.matched and name in (None, r.label)]
        if not test and name is not None:
            continue
        rows.append([name or "all", len(test), sum(r.pid in pids for r in test),
                     sum(r.pid_family in families for r in test), sum(r.reference_file in slices for r in test)])
    return (["class", "test images with a patient", "patient (pid) in Training", "pid family in Training",
             "same slice in Training"], rows)


def test_images_grouped_with_training(analysis: PatientAnalysis) -> tuple[int, int, Counter]:
    """(official test images whose group, patient family or near-duplicate group, holds a training
    image; all test images; the others per class): what a group-wise split would have to move."""
    train_groups = {r.group for r in analysis.rows if r.split == "train"}
    test = [r for r in analysis.rows if r.split == "test"]
    apart = Counter(r.label for r in test if r.group not in train_groups)
    return len(test) - sum(apart.values()), len(test), apart


def label_disagreements(analysis: PatientAnalysis) -> list[PatientRow]:
    return [r for r in analysis.rows if r.matched and r.label != r.reference_label]


def disagreement_table(analysis: PatientAnalysis) -> Table:
    rows = [[r.file, r.split, r.label, r.reference_label, r.reference_index, r.pid, f"{r.similarity:.4f}",
             r.orientation, r.kind] for r in label_disagreements(analysis)]
    return ["file", "split", "dataset label", "reference class", "reference index", "pid", "similarity",
            "orientation", "kind"], rows


def band_table(analysis: PatientAnalysis) -> Table:
    """Per leakage band of the official test images (similarity of the nearest training image):
    the 1-nearest-neighbour accuracy (knn.pixels' rule); for test images with a patient, how
    often that nearest training image is the same patient; for the others, how many share a
    near-duplicate group with a training image at the grouping threshold."""
    row_of = analysis.by_file()
    train_groups = {r.group for r in analysis.rows if r.split == "train"}
    neighbours = analysis.neighbours
    rows = []
    for (label, _, _), mask in zip(BANDS, band_masks([n.similarity for n in neighbours])):
        inside = [n for n, keep in zip(neighbours, mask) if keep]
        known = [n for n in inside if row_of[n.file].matched and row_of[n.train_file].matched]
        same = sum(row_of[n.file].pid_family == row_of[n.train_file].pid_family for n in known)
        with_patient = [n for n in inside if row_of[n.file].matched]
        without = [n for n in inside if not row_of[n.file].matched]
        rows.append([label, len(inside), _share(sum(n.same_label for n in inside), len(inside)),
                     len(with_patient), _share(same, len(known)),
                     _share(sum(row_of[n.file].group in train_groups for n in with_patient), len(with_patient)),
                     len(without), _share(sum(n.same_label for n in without), len(without)),
                     _share(sum(row_of[n.file].group in train_groups for n in without), len(without))])
    return (["nearest training similarity", "test images", "1-NN accuracy", "with a patient",
             "nearest training image: same patient family", "patient family in Training",
             "without a patient", "their 1-NN accuracy", "grouped with a training image"], rows)


def sweep_table(analysis: PatientAnalysis) -> Table:
    rows = []
    for step in analysis.grouping.sweep:
        mix = ", ".join(f"{name} {n}" for name, n in sorted(step.largest_classes.items(), key=lambda kv: -kv[1]))
        mark = "chosen" if step.threshold == analysis.grouping.threshold else ("collapse" if step.collapses else "")
        rows.append([f"{step.threshold:.2f}", step.n_groups, step.n_singletons, step.largest, mix, mark])
    return ["threshold", "groups", "groups of one", "largest group", "its classes", ""], rows


def unmatched_groups(analysis: PatientAnalysis) -> dict[str, list[PatientRow]]:
    groups: dict[str, list[PatientRow]] = defaultdict(list)
    for row in analysis.rows:
        if not row.matched:
            groups[row.group].append(row)
    return groups


def group_size_table(analysis: PatientAnalysis) -> Table:
    """Per class of the unmatched images: how many sit in groups of each size, and in how many groups."""
    groups = unmatched_groups(analysis)
    size = {group: len(members) for group, members in groups.items()}
    rows = []
    for name in (*analysis.class_names, None):
        members = [r for group in groups.values() for r in group if name in (None, r.label)]
        if not members:
            continue
        buckets = [sum(low <= size[r.group] and (high is None or size[r.group] <= high) for r in members)
                   for _, low, high in SIZE_BUCKETS]
        rows.append([name or "all", len(members), len({r.group for r in members}), *buckets])
    return ["class", "unmatched images", "groups", *(f"in groups of {b[0]}" for b in SIZE_BUCKETS)], rows
