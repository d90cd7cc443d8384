"""patients.csv: one row per image of the dataset, with its patient when a reference slice matched."""

from __future__ import annotations

import csv
from pathlib import Path

from bench.io import atomic_path
from bench.patients.result import PatientAnalysis

COLUMNS = ("file", "split", "label", "sha256", "reference_index", "pid", "pid_family", "similarity", "orientation",
           "kind", "reference_label", "reference_file", "group")


def write_patients_csv(analysis: PatientAnalysis, path: Path) -> Path:
    """Kind none: no reference slice matched; the reference and patient cells are empty, and
    similarity and orientation are those of the nearest slice."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in analysis.rows:
            writer.writerow((r.file, r.split, r.label, r.sha256, r.reference_index, r.pid, r.pid_family,
                             f"{r.similarity:.5f}", r.orientation, r.kind, r.reference_label, r.reference_file,
                             r.group))
    return path
