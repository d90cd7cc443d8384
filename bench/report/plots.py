"""Per-entry figures (confusion matrix, training curves) and the suite's accuracy-vs-latency plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from bench.report.figure import plt, save_figure
from bench.report.fmt import missing, pct_interval
from bench.report.history import history_path, read_history
from bench.report.rows import class_names, entry_dir, has_confusion, is_ok
from bench.report.tradeoff import write_tradeoff_plots

CONFUSION_PNG = "confusion.png"
CURVES_PNG = "curves.png"


def write_plots(results: dict, out_dir: Path, mode: str = "eager") -> list[Path]:
    """Every figure of a report; returns the paths written."""
    out_dir = Path(out_dir)
    classes = class_names(results)
    written = []
    for row in filter(is_ok, results["rows"]):
        folder = entry_dir(out_dir, row["entry"])
        if has_confusion(row):
            written.append(save_figure(confusion_figure(row, classes), folder / CONFUSION_PNG))
        history_file = history_path(out_dir, row["entry"])
        if history_file.is_file():
            history = read_history(history_file)
            if history.get("epoch") or history.get("train_loss"):
                written.append(save_figure(curves_figure(history, row), folder / CURVES_PNG))
    written += write_tradeoff_plots(results, out_dir, mode)
    return written


def confusion_figure(row: dict, classes: tuple[str, ...]):
    """Counts in the cells; colour is the row-normalised share, so small classes read as clearly as big ones."""
    counts = np.asarray(row["test_confusion"], dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig, ax = plt.subplots(figsize=(6.0, 5.0))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            colour = "white" if shares[i, j] > 0.55 else "black"
            ax.text(j, i, f"{int(counts[i, j])}\n{100 * shares[i, j]:.1f} %", ha="center", va="center",
                    color=colour, fontsize=9)
    ax.set_xticks(range(len(classes)), classes, rotation=20, ha="right")
    ax.set_yticks(range(len(classes)), [f"{c} ({int(t)})" for c, t in zip(classes, totals[:, 0])])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (test images)")
    ax.set_title(f"{row['entry']}\ntest accuracy {pct_interval(row.get('test_acc'), row.get('test_acc_ci95'))}",
                 fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    return fig


def curves_figure(history: dict[str, list[float]], row: dict):
    """Loss and accuracy per epoch, train and validation, with the kept (best validation) epoch marked."""
    n = max(len(v) for v in history.values())
    epochs = history.get("epoch") or list(range(1, n + 1))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10.0, 4.0))
    marker = "o" if n <= 30 else None  # markers show single epochs but clutter long runs
    # Train loss is the recipe's (label smoothing, augmented batches); val loss is plain cross-entropy.
    for split, style, loss_label in (("train", "-", "train (recipe loss)"), ("val", "--", "val")):
        ax_loss.plot(epochs, _column(history, f"{split}_loss", n), style, marker=marker, ms=3, label=loss_label)
        accuracy = [100 * v for v in _column(history, f"{split}_acc", n)]
        ax_acc.plot(epochs, accuracy, style, marker=marker, ms=3, label=split)
    best = row.get("best_epoch")
    for ax in (ax_loss, ax_acc):
        if not missing(best) and best:
            ax.axvline(best, color="grey", linestyle=":", label=f"kept epoch {int(best)} (best val)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_loss.set_ylabel("cross-entropy loss")
    ax_acc.set_ylabel("accuracy (%)")
    fig.suptitle(f"{row['entry']}: training history", fontsize=11)
    return fig


def _column(history: dict[str, list[float]], name: str, n: int) -> list[float]:
    """A history column, or NaNs (an empty line) when the runner did not record it."""
    return history.get(name) or [math.nan] * n
