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
    """The row on disk; None if there is none. A file that cannot be read is not an absence:
    it comes back as a `damaged` row naming its path, so the leaderboard shows it (and the
    runner computes it again) instead of the entry silently disappearing."""
    path = row_path(out_dir, entry)
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return damaged_row(entry, path, f"{type(error).__name__}: {error}")
    if not isinstance(row, dict) or row.get("entry") != entry:
        return damaged_row(entry, path, "not a result row of this entry")
    return row


def damaged_row(entry: str, path: Path, why: str) -> dict:
    return {"entry": entry, "status": "damaged", "error": f"row file {path} cannot be read ({why})",
            "row_file": str(path)}
