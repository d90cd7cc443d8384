"""similarity_histogram.png: each image's similarity to its nearest reference slice, log-scale
counts, stacked by the dataset's class, with the gap and the threshold marked. Left: the whole
range; right: from the floor of the gap search up, where matches and non-matches part."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.patients.recover import MATCH_FLOOR
from bench.patients.result import PatientAnalysis
from bench.report.figure import plt, save_figure


def write_histogram(analysis: PatientAnalysis, path: Path) -> Path:
    similarity = np.array([r.similarity for r in analysis.rows], np.float64)
    labels = np.array([r.label for r in analysis.rows])
    present = [name for name in analysis.class_names if (labels == name).any()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    # Similarities below 0 (a few dark or blank pictures) are drawn in the first bin.
    for ax, low, width in ((axes[0], 0.0, 0.01), (axes[1], MATCH_FLOOR, 0.001)):
        bins = np.arange(low, 1.0 + width, width)
        shown = [np.clip(similarity[labels == name], 0.0, 1.0) for name in present]
        shown = [values[values >= low] for values in shown]
        if present:
            ax.hist(shown, bins=bins, stacked=True, label=present, log=True)
        gap = analysis.gap
        ax.axvspan(max(gap.low, low), gap.high, color="0.85", zorder=0, label="widest gap")
        ax.axvline(analysis.threshold, color="red", linewidth=1, label=f"threshold {analysis.threshold:g}")
        ax.set_xlim(low, 1.0)
        ax.set_xlabel("similarity to the nearest reference slice")
        ax.set_ylabel("images (log scale)")
    axes[1].set_title(f"from {MATCH_FLOOR}", fontsize=9)
    axes[0].set_title("all images", fontsize=9)
    axes[1].legend(fontsize=7, loc="upper left")
    return save_figure(fig, path)
