"""Is the top entry really better? Paired McNemar tests of the top row against every other row,
on the same test images, from the per-image predictions each entry wrote beside its row."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bench.evaluate.mcnemar import SIGNIFICANCE_LEVEL, mcnemar
from bench.report.rows import ranked
from bench.runner.entry_pipeline import ENTRIES_DIR, PREDICTIONS_CSV


class UnreadablePredictions(Exception):
    """An entry's test_predictions.csv is missing or cannot be read; the message says which and why."""


def ranked_units(rows: list[dict], rank_key: str) -> list[dict]:
    """The rows to compare, best first. Folds of one k-fold run are one unit: their test sides
    together hold every image once (pooled out-of-fold predictions), ranked by the mean over
    folds; a run with a failed or missing fold is not compared."""
    units: dict[str, dict] = {}
    for row in rows:
        group = row.get("cv_group")
        if group is None:
            units[row["entry"]] = row
            continue
        unit = units.setdefault(group, {"entry": group, "status": "ok", "members": [], "scores": [],
                                        "n_folds": row.get("n_folds")})
        unit["members"].append(row["entry"])
        ok = row.get("status") == "ok" and row.get(rank_key) is not None
        unit["scores"].append(row.get(rank_key) if ok else None)
    for unit in units.values():
        if "members" in unit:
            complete = None not in unit["scores"] and len(unit["scores"]) == unit["n_folds"]
            unit[rank_key] = float(np.mean(unit["scores"])) if complete else None
    return ranked(list(units.values()), rank_key)


def _correct_by_image(out_dir: Path, unit: dict) -> dict[str, bool]:
    correct: dict[str, bool] = {}
    for run_id in unit.get("members", [unit["entry"]]):
        correct |= _correct_of_run(out_dir, run_id)
    return correct


def _correct_of_run(out_dir: Path, run_id: str) -> dict[str, bool]:
    path = out_dir / ENTRIES_DIR / run_id / PREDICTIONS_CSV
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return {r["path"]: r["label"] == r["predicted"] for r in csv.DictReader(handle)}
    except FileNotFoundError:
        raise UnreadablePredictions(f"no {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UnreadablePredictions(f"{path} cannot be read ({type(error).__name__}: {error})") from None
    except KeyError as error:
        raise UnreadablePredictions(f"{path} has no column {error}") from None


def compare_with_top(rows: list[dict], out_dir: Path, rank_key: str, images: set[str] | None) -> dict | None:
    """{"reference", "rank_key", "images", "level", "rows": {run id: {b, c, p_value, significant}},
    "skipped": {run id: why}}.

    `rows` are ranked best first by `rank_key`; `images` limits the test to those test images
    (the clean split), None uses all. A ranked row whose predictions cannot be read, or that shares
    no image with the top row, is listed under "skipped" with the reason, never dropped silently.
    """
    correct, skipped = {}, {}
    for row in rows:
        if row.get("status") != "ok" or row.get(rank_key) is None:
            continue  # not ranked: the leaderboard shows why it did not run
        try:
            correct[row["entry"]] = _correct_by_image(out_dir, row)
        except UnreadablePredictions as error:
            skipped[row["entry"]] = str(error)
    if len(correct) < 2:
        return {"reference": None, "rows": {}, "skipped": skipped} if skipped else None
    top = next(r["entry"] for r in rows if r["entry"] in correct)
    shared = set(correct[top]) if images is None else set(correct[top]) & images
    compared = {}
    for run_id, other in correct.items():
        if run_id == top:
            continue
        common = sorted(shared & set(other))
        if not common:
            skipped[run_id] = f"shares no test image with {top}"
            continue
        test = mcnemar(np.array([correct[top][p] for p in common]), np.array([other[p] for p in common]))
        compared[run_id] = {"n_images": len(common), "top_only_right": test.first_only,
                            "other_only_right": test.second_only, "p_value": test.p_value,
                            "significant": test.significant}
    return {"reference": top, "rank_key": rank_key, "level": SIGNIFICANCE_LEVEL,
            "images": f"{len(shared)} test images" if images is None else f"{len(shared)} clean test images",
            "rows": compared, "skipped": skipped}
