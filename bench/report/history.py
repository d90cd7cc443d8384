"""Reading an entry's per-epoch history.csv, written beside results.json by the runner."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from bench.errors import BrainbenchError
from bench.report.rows import entry_dir

HISTORY_FILE = "history.csv"


def history_path(out_dir: Path, entry: str) -> Path:
    return entry_dir(out_dir, entry) / HISTORY_FILE


def read_history(path: Path) -> dict[str, list[float]]:
    """Columns of history.csv as float lists; empty or unparsable cells become NaN.

    NaN rather than an error because a metric can be undefined for one epoch (a validation
    split with one class, say) and the curve should simply have a gap there.
    """
    try:
        with open(path, newline="") as f:
            records = list(csv.DictReader(f))
    except OSError as error:
        raise BrainbenchError(f"cannot read training history {path}: {error}") from error
    columns: dict[str, list[float]] = {}
    for record in records:
        for key, text in record.items():
            if key is not None:
                columns.setdefault(key, []).append(_float(text))
    return columns


def _float(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan
