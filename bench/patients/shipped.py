"""The patient map brainbench ships for the Kaggle dataset, keyed by each image's content hash.

Users without the figshare-cheng reference still get its patients: an image's sha256 names its
bytes wherever the dataset was downloaded to and however its folders are named. The map holds the
matched images only (the unmatched get near-duplicate groups, computed from the images alone),
one row per distinct file, keyed by the first 16 hex digits of the sha256 (64 bits: for a few
thousand images a collision is about 1e-12 likely), which keeps the file small.

`brainbench patients` writes the same map for any dataset as patient-map.csv; the shipped one is
that file from a run on the Kaggle dataset against figshare-cheng.
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

from bench.data.discover import DatasetIndex
from bench.data.fingerprint import file_sha256
from bench.errors import DatasetError
from bench.io import write_text_atomically
from bench.patients.result import PatientAnalysis

KEY_LENGTH = 16
COLUMNS = ("sha256_16", "pid", "pid_family", "figshare_index", "similarity", "kind")
SHIPPED_MAP = "kaggle-patients.csv"


def write_patient_map(analysis: PatientAnalysis, path: Path) -> Path:
    """The matched images of an analysis as a map (sorted by key, so that a regenerated map diffs cleanly)."""
    rows = {}
    for r in analysis.rows:
        if r.matched:  # copies of one file share their nearest slice, so one row per key is all
            rows.setdefault(r.sha256[:KEY_LENGTH],
                            (r.pid, r.pid_family, r.reference_index, f"{r.similarity:.4f}", r.kind))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows((key, *values) for key, values in sorted(rows.items()))
    write_text_atomically(path, buffer.getvalue())
    return path


def read_patient_map(path: Path | None = None) -> dict[str, tuple[str, str]]:
    """sha256 prefix -> (pid, pid_family), from `path` or else the shipped map."""
    source = Path(path) if path is not None else resources.files("bench.patients") / "data" / SHIPPED_MAP
    try:
        with source.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not set(COLUMNS[:3]) <= set(reader.fieldnames or ()):
                raise DatasetError(f"patient map {source} lacks the columns {', '.join(COLUMNS[:3])}")
            return {row["sha256_16"]: (row["pid"], row["pid_family"]) for row in reader}
    except OSError as error:
        raise DatasetError(f"patient map {source} cannot be read ({error.strerror or error})") from None


def shipped_patients(index: DatasetIndex, map_path: Path | None = None) -> dict[str, tuple[str, str]]:
    """rel -> (pid, pid_family) for every image of `index` whose bytes are in the map (the shipped
    one unless `map_path` is given); images not in it are absent."""
    patients = read_patient_map(map_path)
    found = {}
    for sample in index.samples:
        patient = patients.get(file_sha256(sample.path)[:KEY_LENGTH])
        if patient is not None:
            found[sample.rel] = patient
    return found
