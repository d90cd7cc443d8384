"""Is the top entry really better? Paired McNemar tests of the top row against every other row,
on the same test images, from the per-image predictions each entry wrote beside its row."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bench.evaluate.mcnemar import SIGNIFICANCE_LEVEL, mcnemar
from bench.runner.entry_pipeline import ENTRIES_DIR, PREDICTIONS_CSV


def _correct_by_image(out_dir: Path, run_id: str) -> dict[str, bool] | None:
    path = out_dir / ENTRIES_DIR / run_id / PREDICTIONS_CSV
    try:
        with open(path, newline="") as handle:
            return {r["path"]: r["label"] == r["predicted"] for r in csv.DictReader(handle)}
    except (OSError, KeyError):
        return None


def compare_with_top(rows: list[dict], out_dir: Path, rank_key: str, images: set[str] | None) -> dict | None:
    """{"reference", "rank_key", "images", "level", "rows": {run id: {b, c, p_value, significant}}}.

    `rows` are ranked best first by `rank_key`; `images` limits the test to those test images
    (the clean split), None uses all. Rows without predictions on disk are left out.
    """
    correct = {r["entry"]: c for r in rows if r.get("status") == "ok" and r.get(rank_key) is not None
               and (c := _correct_by_image(out_dir, r["entry"])) is not None}
    if len(correct) < 2:
        return None
    top = next(r["entry"] for r in rows if r["entry"] in correct)
    shared = set(correct[top]) if images is None else set(correct[top]) & images
    compared = {}
    for run_id, other in correct.items():
        common = sorted(shared & set(other))
        if run_id == top or not common:
            continue
        test = mcnemar(np.array([correct[top][p] for p in common]), np.array([other[p] for p in common]))
        compared[run_id] = {"n_images": len(common), "top_only_right": test.first_only,
                            "other_only_right": test.second_only, "p_value": test.p_value,
                            "significant": test.significant}
    return {"reference": top, "rank_key": rank_key, "level": SIGNIFICANCE_LEVEL,
            "images": f"{len(shared)} official test images" if images is None else f"{len(shared)} clean test images",
            "rows": compared}
