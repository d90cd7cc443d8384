"""Result rows on disk: one JSON file per entry, written the moment the row exists.

A finished row is never recomputed unless asked; an interrupted run loses only the entry in
progress, because every other row is already on disk.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.io import write_atomically

ROWS_DIR = "rows"


def _json_safe(value):
    """NaN and infinities are written as null: strict JSON readers reject the bare tokens."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def dump_json(data, path: Path) -> None:
    write_atomically(path, json.dumps(_json_safe(data), indent=1).encode())


def row_path(out_dir: Path, entry: str) -> Path:
    return out_dir / ROWS_DIR / f"{entry}.json"


def write_row(out_dir: Path, row: dict) -> None:
    dump_json(row, row_path(out_dir, row["entry"]))


def read_row(out_dir: Path, entry: str) -> dict | None:
    path = row_path(out_dir, entry)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return None  # a damaged row is simply recomputed


def is_reusable(row: dict | None, recipe_hash: str, fingerprint: str, measured: str) -> bool:
    """A finished row for the same recipe, the same data and the same measurements: nothing to
    recompute. (Measuring more, e.g. a new latency mode, reloads the checkpoint; it never retrains.)"""
    return (row is not None and row.get("status") == "ok" and row.get("recipe_hash") == recipe_hash
            and row.get("dataset_fingerprint") == fingerprint and row.get("measured", "") == measured)
