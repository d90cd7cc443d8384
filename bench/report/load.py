"""Reading and checking results.json, so that a broken file fails with its name, not a KeyError."""

from __future__ import annotations

import json
import re
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
    for key in ("suite", "environment", "dataset", "labels"):
        if results.get(key) is not None and not isinstance(results[key], dict):
            raise BrainbenchError(f"malformed results in {source}: {key!r} must be an object")
    _check_labels(results, source)
    _check_records(results, "protocols", "name", source)
    _check_records(results, "published", "source", source)
    for row in rows:
        _check_numbers(row, source)
        _check_fold(row, source)
    names = [row["entry"] for row in rows]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise BrainbenchError(f"malformed results in {source}: entries appear twice: {', '.join(duplicates)}")


# Columns the reports format as numbers (or lists of numbers: intervals, per-class values, the
# confusion matrix). A string there would surface as a format-code error naming neither the
# column nor the row; text columns (notes, tasks, providers, names, cv_group) never match.
NUMERIC_COLUMN = re.compile(r"^(test_|pooled_|cv_acc_|cv_macro_f1_|clean_|leak_acc_|latency_ms_|throughput_ips_|compile_s|probe_acc_|"
                            r"params$|gmacs$|size_mb$|val_acc$|train_seconds$|entry_seconds$|epochs_run$|"
                            r"best_epoch$|input_size$|folds_done$|"
                            r"ext_.*_(acc|acc_ci95|balanced_acc|macro_f1|n|n_images)$)")


def _is_number_or_numbers(value) -> bool:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return True
    return isinstance(value, list) and all(_is_number_or_numbers(v) for v in value)


def _check_numbers(row: dict, source: str) -> None:
    for key, value in row.items():
        if NUMERIC_COLUMN.match(key) and not key.endswith("_classes") and not _is_number_or_numbers(value):
            raise BrainbenchError(f"malformed results in {source}: row {row['entry']!r} column {key!r} must be a "
                                  f"number, got {json.dumps(value)[:60]}")


def _check_fold(row: dict, source: str) -> None:
    # Fold numbers pick files and group rows: 2.0 or "2" would silently start a group of their own.
    for key in ("fold", "n_folds"):
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BrainbenchError(f"malformed results in {source}: row {row['entry']!r} column {key!r} must be a "
                                  f"whole number from 1 or null, got {json.dumps(value)[:60]}")
    fold, n_folds = row.get("fold"), row.get("n_folds")
    if row.get("protocol_kind") == "kfold" and fold is None:
        raise BrainbenchError(f"malformed results in {source}: row {row['entry']!r} of a kfold protocol has no 'fold'")
    if fold is not None and n_folds is not None and fold > n_folds:
        raise BrainbenchError(f"malformed results in {source}: row {row['entry']!r} is fold {fold} of {n_folds}")


def _check_labels(results: dict, source: str) -> None:
    """Class names are table headers and per-class keys: a list of distinct strings."""
    for where, names in (("class_names", results.get("class_names")),
                         ("labels.names", (results.get("labels") or {}).get("names"))):
        if names is None:
            continue
        distinct = isinstance(names, (list, tuple)) and len(set(map(str, names))) == len(names)
        if not distinct or not all(isinstance(n, str) and n for n in names):
            raise BrainbenchError(f"malformed results in {source}: {where!r} must be a list of distinct class names, "
                                  f"got {json.dumps(names)[:80]}")


def _check_records(results: dict, key: str, required: str, source: str) -> None:
    """results[key], when present, is a list of objects, each with a `required` text field."""
    records = results.get(key)
    if records is None:
        return
    if not isinstance(records, list):
        raise BrainbenchError(f"malformed results in {source}: {key!r} must be a list")
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get(required), str):
            raise BrainbenchError(f"malformed results in {source}: {key}[{i}] has no {required!r}")
