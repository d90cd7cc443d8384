"""The one place that configures matplotlib: Agg backend (no display needed) and how figures are saved."""

from __future__ import annotations

from pathlib import Path

import matplotlib

# Before pyplot is imported, so that reports render on headless machines and in CI.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench.io import atomic_path

DPI = 120


def save_figure(fig, path: Path) -> Path:
    """Write fig as PNG with a tight layout and release it (pyplot otherwise keeps every figure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.tight_layout()
        # bbox "tight" as well: long tick labels (class names with counts) are never clipped.
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(fig)
    return path
