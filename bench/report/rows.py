"""Questions about result rows that every writer asks: which ran, in what order, where they live."""

from __future__ import annotations

import math
from pathlib import Path

from bench.errors import BrainbenchError

ENTRIES_DIR = "entries"
# For results written before datasets declared their labels: every such run used the Kaggle
# brain-tumor-mri set, whose four classes these are, in its output order.
LEGACY_CLASS_NAMES = ("glioma", "meningioma", "notumor", "pituitary")
LEGACY_NO_TUMOR = "notumor"
# Rows the report builds from the folds of one kfold group (bench/report/folds.py) say so, and
# read their metrics from the pooled out-of-fold predictions instead of one test split.
SUMMARY_KIND = "cv-summary"


def is_ok(row: dict) -> bool:
    return row.get("status") == "ok"


def ranked(rows: list[dict], rank_key: str = "test_acc") -> list[dict]:
    """Rows by test accuracy (or another accuracy column, e.g. clean_acc), best first; rows
    without one (failed, or metrics missing) last.

    Ties and unranked rows go by entry name, so the order never depends on run order.
    """
    def key(row: dict):
        acc = row.get(rank_key)
        has_acc = is_ok(row) and isinstance(acc, (int, float)) and not math.isnan(acc)
        return (0, -acc, row["entry"]) if has_acc else (1 if is_ok(row) else 2, 0.0, row["entry"])
    return sorted(rows, key=key)


def rank_key(results: dict) -> str:
    """The accuracy column a leaderboard ranks by: official test, or clean test on the clean split."""
    return results.get("rank_key") or "test_acc"


def class_names(results: dict) -> tuple[str, ...]:
    """The class order of every per-class key and of the confusion matrix."""
    labels = results.get("labels") or {}
    return tuple(results.get("class_names") or labels.get("names") or LEGACY_CLASS_NAMES)


def no_tumor_class(results: dict) -> str | None:
    """The class meaning "no tumour", or None when the dataset has none (figshare-cheng: every
    image shows a tumour). Results without a labels record are the Kaggle set's."""
    labels = results.get("labels")
    if isinstance(labels, dict):
        return labels.get("no_tumor")
    return LEGACY_NO_TUMOR if LEGACY_NO_TUMOR in class_names(results) else None


def entry_dir(out_dir: Path, entry: str) -> Path:
    """out_dir/entries/<entry>; an entry name that would escape that folder is refused."""
    if not entry or entry.startswith(".") or any(sep in entry for sep in ("/", "\\")):
        raise BrainbenchError(f"entry name {entry!r} cannot be used as a folder name")
    return Path(out_dir) / ENTRIES_DIR / entry


def entry_link(entry: str, file_name: str) -> str:
    """The relative link from the suite folder to one per-entry file (always '/'-separated)."""
    return f"{ENTRIES_DIR}/{entry}/{file_name}"


def metric_prefix(row: dict) -> str:
    """Where a row's classification metrics live: "pooled_" for a cross-validation summary, else "test_"."""
    return "pooled_" if row.get("row_kind") == SUMMARY_KIND else "test_"


def has_confusion(row: dict) -> bool:
    return isinstance(row.get("test_confusion"), list)


def class_support(row: dict, n_classes: int, prefix: str = "test_") -> list[int] | None:
    """Test images per true class: the confusion matrix's row sums; None without a matrix.
    prefix picks the matrix: "test_" of one test split, "pooled_" of a cross-validation summary."""
    confusion = row.get(f"{prefix}confusion")
    if not isinstance(confusion, list) or len(confusion) != n_classes:
        return None
    return [int(sum(line)) for line in confusion]
