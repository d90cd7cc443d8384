"""pairs_at_threshold.png: test images beside their nearest training image, either side of the threshold.

The threshold is a judgement; this sheet lets a person make it. Images are decoded again from
the files at a viewing size (only these few), and the training image is shown turned the way it
matched, so a mirrored copy looks like a copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.audit.audit import AuditResult, Match
from bench.data.decode import decode_image
from bench.errors import ImageDecodeError
from bench.report.figure import plt, save_figure

PAIRS_PER_SIDE = 8
VIEW_SIDE = 128


def edge_pairs(result: AuditResult, per_side: int = PAIRS_PER_SIDE) -> tuple[list[Match], list[Match]]:
    """The lowest-scoring cosine duplicates (above) and the highest-scoring non-duplicates (below).

    Exact copies are left out: their bytes decide, not the threshold.
    """
    scored = [m for m in result.test_vs_train if m.kind != "exact"]
    above = sorted((m for m in scored if m.similarity >= result.threshold), key=lambda m: m.similarity)
    below = sorted((m for m in scored if m.similarity < result.threshold), key=lambda m: -m.similarity)
    return above[:per_side], below[:per_side]


def _view(root: Path, rel: str, orientation: str = "identity") -> np.ndarray:
    try:
        pixels = decode_image(root / rel, VIEW_SIDE, 1)[0]
    except ImageDecodeError:
        return np.zeros((VIEW_SIDE, VIEW_SIDE), np.uint8)
    # The test image was turned by `orientation` to match; turning the training image the same
    # way undoes it (each flip is its own inverse), so both are shown in the test image's pose.
    if orientation in ("h-flip", "h+v-flip"):
        pixels = pixels[:, ::-1]
    if orientation in ("v-flip", "h+v-flip"):
        pixels = pixels[::-1, :]
    return pixels


def write_sheet(result: AuditResult, path: Path) -> Path:
    above, below = edge_pairs(result)
    rows = [("above", m) for m in above] + [("below", m) for m in below]
    n_rows = max(1, (len(rows) + 1) // 2)
    # Two pairs per row: test | train || test | train.
    fig, axes = plt.subplots(n_rows, 4, figsize=(8, 2.2 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    root = result.index.root
    for k, (side, m) in enumerate(rows):
        r, c = divmod(k, 2)
        left, right = axes[r, 2 * c], axes[r, 2 * c + 1]
        left.imshow(_view(root, m.a_rel), cmap="gray", vmin=0, vmax=255)
        left.set_title(f"{side}: test {m.a_label}\n{Path(m.a_rel).name}", fontsize=6)
        right.imshow(_view(root, m.b_rel, m.orientation), cmap="gray", vmin=0, vmax=255)
        right.set_title(f"sim {m.similarity:.4f} ({m.orientation})\ntrain {m.b_label} {Path(m.b_rel).name}",
                        fontsize=6)
    if not rows:
        axes[0, 0].text(0, 0.5, "no non-exact pairs to show", fontsize=8)
    fig.suptitle(f"Nearest training image: {len(above)} pairs just above and {len(below)} just below "
                 f"the threshold {result.threshold}", fontsize=8, y=1.01)
    return save_figure(fig, path)
