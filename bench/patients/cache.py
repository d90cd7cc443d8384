"""The patient analysis kept as JSON in the cache folder, keyed by both datasets' fingerprints.

The fingerprints name the exact files of the dataset and of the reference (and their labels and
patient ids, which fingerprints of a metadata table include), the reference's columns key its
family and slice-index columns, so a stored analysis can only be reused for the same inputs; the
threshold given (or "gap": chosen from the histogram) is part of the key too. A file of another format, or a damaged one, is computed again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from bench.errors import CacheError
from bench.io import write_atomically
from bench.patients.groups import Grouping, SweepStep
from bench.patients.recover import Gap
from bench.patients.result import PatientAnalysis, PatientRow, TestNeighbour

FORMAT_VERSION = 1
log = logging.getLogger("brainbench")


def cache_file(cache_root: Path, data_fingerprint: str, reference_fingerprint: str, reference_columns: str,
               threshold: float | None) -> Path:
    chosen = "gap" if threshold is None else f"t{threshold:g}"
    name = f"patients-{data_fingerprint}-{reference_fingerprint}-{reference_columns}-{chosen}.json"
    return Path(cache_root) / name


def save(path: Path, analysis: PatientAnalysis) -> None:
    data = dataclasses.asdict(analysis)
    data.pop("from_cache")
    data["format"] = FORMAT_VERSION
    try:
        write_atomically(path, json.dumps(data).encode())
    except OSError as error:
        raise CacheError(f"cannot write the patient analysis cache {path}: {error.strerror or error} "
                         "(free some space, or choose another folder with --cache)") from error


def load(path: Path) -> PatientAnalysis | None:
    """The stored analysis, or None when there is none, it has another format, or it is damaged
    (with a warning naming the file)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("format", None) != FORMAT_VERSION:
            return None
        grouping = data.pop("grouping")
        return PatientAnalysis(
            **{**data, "class_names": tuple(data["class_names"]), "gap": Gap(**data["gap"]),
               "rows": [PatientRow(**row) for row in data["rows"]],
               "neighbours": [TestNeighbour(**n) for n in data["neighbours"]],
               "grouping": Grouping(**{**grouping, "sweep": tuple(SweepStep(**s) for s in grouping["sweep"])})})
    # Bad UTF-8 or JSON (ValueError), missing or unexpected fields (KeyError, TypeError), an unreadable file.
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("patient analysis cache %s is damaged (%s: %s); computing it again",
                    path, type(error).__name__, error)
        return None
