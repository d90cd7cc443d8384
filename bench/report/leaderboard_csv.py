"""leaderboard.csv: every key of every row, flat, in a column order that does not drift."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from bench.io import atomic_path
from bench.report.modes import latency_modes

IDENTITY = ("entry", "zoo_entry", "setting", "seed", "split", "arch", "variant", "status", "error", "recipe_hash",
            "input_size", "in_channels",
            "epochs_run", "best_epoch", "train_seconds", "loaded_from_store", "val_acc")
TEST_SUMMARY = ("n", "acc", "acc_ci95", "macro_f1", "macro_f1_ci95", "weighted_f1", "macro_precision",
                "macro_sensitivity", "macro_specificity", "weighted_precision", "weighted_sensitivity",
                "weighted_specificity", "macro_auc", "ece", "mean_confidence", "tumor_missed_rate", "loss")
PER_CLASS = ("precision", "sensitivity", "sensitivity_{}_ci95", "specificity", "f1", "auc")
SIZE = ("params", "params_m", "gmacs", "size_mb")
PER_MODE = ("latency_ms_b1_{}", "latency_ms_b1_{}_p90", "throughput_ips_b64_{}",
            "throughput_batch_{}", "compile_s_{}", "compile_s_b1_{}", "compile_s_b64_{}", "latency_note_{}")


def csv_columns(rows: list[dict], classes: tuple[str, ...]) -> list[str]:
    """Known columns in reading order, then any other key any row has, sorted by name."""
    preferred = list(IDENTITY) + [f"test_{name}" for name in TEST_SUMMARY]
    for c in classes:
        preferred += [f"test_{p.format(c)}" if "{}" in p else f"test_{p}_{c}" for p in PER_CLASS]
    preferred += ["test_confusion", *SIZE]
    for mode in latency_modes(rows):
        preferred += [p.format(mode) for p in PER_MODE]
    present = set().union(*(row.keys() for row in rows)) if rows else set()
    return ["rank"] + [c for c in preferred if c in present] + sorted(present - set(preferred) - {"rank"})


def write_leaderboard_csv(ranked_rows: list[dict], classes: tuple[str, ...], path: Path) -> None:
    columns = csv_columns(ranked_rows, classes)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        rank = 0
        for row in ranked_rows:
            rank += row.get("status") == "ok"
            flat = {key: csv_value(row.get(key)) for key in columns}
            flat["rank"] = str(rank) if row.get("status") == "ok" else ""
            writer.writerow(flat)


def csv_value(value) -> str:
    """One cell: '' for None, 'nan' for NaN, 'low;high' for an interval, JSON for other lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # float(): a numpy float64 would otherwise print as "np.float64(...)".
        return "nan" if math.isnan(value) else repr(float(value))
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
        return ";".join(csv_value(v) for v in value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
