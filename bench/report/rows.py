"""Questions about result rows that every writer asks: which ran, in what order, where they live."""

from __future__ import annotations

import math
from pathlib import Path

from bench.data.labels import CLASS_NAMES
from bench.errors import BrainbenchError

ENTRIES_DIR = "entries"


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
    return tuple(results.get("class_names") or CLASS_NAMES)


def entry_dir(out_dir: Path, entry: str) -> Path:
    """out_dir/entries/<entry>; an entry name that would escape that folder is refused."""
    if not entry or entry.startswith(".") or any(sep in entry for sep in ("/", "\\")):
        raise BrainbenchError(f"entry name {entry!r} cannot be used as a folder name")
    return Path(out_dir) / ENTRIES_DIR / entry


def entry_link(entry: str, file_name: str) -> str:
    """The relative link from the suite folder to one per-entry file (always '/'-separated)."""
    return f"{ENTRIES_DIR}/{entry}/{file_name}"


def has_confusion(row: dict) -> bool:
    return isinstance(row.get("test_confusion"), list)


def class_support(row: dict, n_classes: int) -> list[int] | None:
    """Test images per true class: the confusion matrix's row sums; None without a matrix."""
    confusion = row.get("test_confusion")
    if not isinstance(confusion, list) or len(confusion) != n_classes:
        return None
    return [int(sum(line)) for line in confusion]
