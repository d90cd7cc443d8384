"""leakage_curve.png: every entry's accuracy per similarity band, with the memorization reference."""

from __future__ import annotations

from pathlib import Path

from bench.leakage.bands import BAND_KEYS, BANDS
from bench.report.figure import plt, save_figure
from bench.report.fmt import missing
from bench.report.honesty import MEMORY_REFERENCE
from bench.report.rows import is_ok

LEAKAGE_PNG = "leakage_curve.png"


def write_leakage_plot(results: dict, rows: list[dict], out_dir: Path) -> list[Path]:
    curves = [row for row in rows if is_ok(row) and f"leak_acc_{BAND_KEYS[0]}" in row]
    if not curves:
        return []
    counts = (results.get("leakage") or {}).get("band_counts", {})
    labels = [f"{label}\n(n = {counts.get(key, '?')})" for (label, _, _), key in zip(BANDS, BAND_KEYS)]
    fig, ax = plt.subplots(figsize=(8.0, 4.8))
    x = list(range(len(BANDS)))
    for row in curves:
        values = [row.get(f"leak_acc_{key}") for key in BAND_KEYS]
        y = [float("nan") if missing(v) else 100 * v for v in values]
        reference = row.get("zoo_entry", row["entry"]) == MEMORY_REFERENCE
        ax.plot(x, y, "k--" if reference else "-", marker="s" if reference else "o", ms=5,
                lw=2.2 if reference else 1.4, label=f"{row['entry']} (memory reference)" if reference else row["entry"],
                zorder=3 if reference else 2)
    ax.set_xticks(x, labels)
    ax.set_xlabel("similarity of the test image to its nearest training image (any orientation)")
    ax.set_ylabel("test accuracy in the band (%)")
    ax.set_title("Leakage curve: accuracy from near-copies (left) to the least similar images (right)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return [save_figure(fig, Path(out_dir) / LEAKAGE_PNG)]
