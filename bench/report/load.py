"""Reading and checking results.json, so that a broken file fails with its name, not a KeyError."""

from __future__ import annotations

import json
from pathlib import Path

from bench.errors import BrainbenchError

RESULTS_JSON = "results.json"


def load_results(path: Path) -> dict:
    """Parse results.json (JSON NaN allowed: undefined metrics are stored as NaN) and check it."""
    path = Path(path)
    if not path.is_file():
        raise BrainbenchError(f"no results file {path}: run the suite first, or point at the folder that holds results.json")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BrainbenchError(f"cannot read results file {path}: {error}") from error
    check_results(results, str(path))
    return results


def check_results(results, source: str) -> None:
    """The shape every report writer relies on: a 'rows' list of dicts, each with an entry name."""
    if not isinstance(results, dict):
        raise BrainbenchError(f"malformed results in {source}: expected a JSON object, got {type(results).__name__}")
    rows = results.get("rows")
    if not isinstance(rows, list):
        raise BrainbenchError(f"malformed results in {source}: 'rows' must be a list of result rows")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("entry"), str):
            raise BrainbenchError(f"malformed results in {source}: row {i} has no 'entry' name")
    for key in ("suite", "environment", "dataset"):
        if results.get(key) is not None and not isinstance(results[key], dict):
            raise BrainbenchError(f"malformed results in {source}: {key!r} must be an object")
    names = [row["entry"] for row in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BrainbenchError(f"malformed results in {source}: entries appear twice: {', '.join(duplicates)}")
