"""leaderboard.csv: every key of every row, flat, in a column order that does not drift."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from bench.io import atomic_path
from bench.report.modes import latency_modes
from bench.report.rows import SUMMARY_KIND, is_ok

IDENTITY = ("entry", "zoo_entry", "setting", "seed", "protocol", "protocol_kind", "fold", "n_folds", "split", "arch",
            "variant", "status", "row_kind", "error", "recipe_hash", "input_size", "in_channels",
            "epochs_run", "best_epoch", "train_seconds", "loaded_from_store", "val_acc")
CROSS_VALIDATION = ("folds_done", "complete", "folds_note", "fold_accs", "fold_entries", "cv_acc_mean", "cv_acc_std",
                    "cv_macro_f1_mean", "cv_macro_f1_std", "pooled_note")
FOLD_KIND = "fold"  # a row of one fold of a kfold protocol; its summary row comes right before it
SINGLE_KIND = "single"  # one model scored on one test split (official or holdout)
METRIC_PREFIXES = ("test_", "pooled_")
TEST_SUMMARY = ("n", "acc", "acc_ci95", "macro_f1", "macro_f1_ci95", "weighted_f1", "macro_precision",
                "macro_sensitivity", "macro_specificity", "weighted_precision", "weighted_sensitivity",
                "weighted_specificity", "macro_auc", "ece", "mean_confidence", "tumor_missed_rate", "loss")
PER_CLASS = ("precision", "sensitivity", "sensitivity_{}_ci95", "specificity", "f1", "auc")
SIZE = ("params", "params_m", "gmacs", "size_mb")
PER_MODE = ("latency_ms_b1_{}", "latency_ms_b1_{}_p90", "throughput_ips_b64_{}",
            "throughput_batch_{}", "compile_s_{}", "compile_s_b1_{}", "compile_s_b64_{}", "latency_note_{}")


def csv_columns(rows: list[dict], classes: tuple[str, ...]) -> list[str]:
    """Known columns in reading order, then any other key any row has, sorted by name."""
    preferred = list(IDENTITY) + list(CROSS_VALIDATION)
    for prefix in METRIC_PREFIXES:
        preferred += [f"{prefix}{name}" for name in TEST_SUMMARY]
    for prefix in METRIC_PREFIXES:
        for c in classes:
            preferred += [f"{prefix}{p.format(c)}" if "{}" in p else f"{prefix}{p}_{c}" for p in PER_CLASS]
    preferred += [f"{prefix}confusion" for prefix in METRIC_PREFIXES] + list(SIZE)
    for mode in latency_modes(rows):
        preferred += [p.format(mode) for p in PER_MODE]
    present = set().union(*(row.keys() for row in rows)) if rows else set()
    return ["rank"] + [c for c in preferred if c in present] + sorted(present - set(preferred) - {"rank"})


def csv_rows(views: dict[str, list[dict]], rows: list[dict]) -> list[dict]:
    """Every row once, protocol by protocol in run order, each protocol's rows in its ranking.
    A kfold protocol's summary row (row_kind "cv-summary") comes first, then its folds (row_kind
    "fold"). `rank` is the place in its protocol's table: ok rows and complete summaries only."""
    by_entry = {row["entry"]: row for row in rows}
    out = []
    for view in views.values():
        rank = 0
        for row in view:
            summary = row.get("row_kind") == SUMMARY_KIND
            ranked_here = row.get("complete") if summary else is_ok(row)
            rank += bool(ranked_here)
            out.append(row | {"rank": str(rank) if ranked_here else "",
                              "row_kind": SUMMARY_KIND if summary else SINGLE_KIND})
            if summary:
                out += [by_entry[entry] | {"rank": "", "row_kind": FOLD_KIND} for entry in row["fold_entries"]]
    return out


def write_leaderboard_csv(views: dict[str, list[dict]], rows: list[dict], classes: tuple[str, ...],
                          path: Path) -> None:
    """views: protocol_views(); rows: results["rows"] (the folds behind each summary)."""
    lines = csv_rows(views, rows)
    columns = csv_columns(lines, classes)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for line in lines:
            flat = {key: csv_value(line.get(key)) for key in columns}
            flat["rank"] = line["rank"]
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
