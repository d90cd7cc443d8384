"""The PNGs of `brainbench explain`: class-activation overlays and feature-map sheets.

Both show the image as the model saw it (padded to a square, resized, cropped if its training
images were), because that is the grid the maps belong to. Figures are saved and closed by
bench.report.figure.save_figure (atomic write, no figure left open).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.gridspec import GridSpec

from bench.explain.feature_maps import BlockMaps
from bench.report.figure import plt, save_figure

# Perceptually uniform and still ordered in greyscale and under colour-vision deficiencies, which
# Grad-CAM's customary "jet" is not; the same map as the Attention U-Net's gate sheets.
CAM_CMAP = "magma"
CAM_ALPHA = 0.55  # enough to read the map, little enough to see the anatomy under it
FEATURE_CMAP = "viridis"
PANEL_INCHES = 3.0
FEATURE_PANEL_INCHES = 1.4


@dataclass(frozen=True)
class ClassMap:
    label: str  # the panel title, e.g. "predicted: glioma (81.2%)"
    cam: np.ndarray  # (H, W) in [0, 1], the image's size


def grey_of(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) from the decoded (C, H, W) model input: its one channel, or the mean of three
    (grey MRI replicated to RGB for ImageNet entries)."""
    return image[0] if image.shape[0] == 1 else image.mean(axis=0).round().astype(np.uint8)


def cam_overlay(image: np.ndarray, maps: Sequence[ClassMap], path: Path, *, title: str) -> Path:
    """The image, then each class's map over it, with one colorbar; `image` is uint8 (C, H, W)."""
    grey = grey_of(image)
    for m in maps:
        if m.cam.shape != grey.shape:
            raise ValueError(f"map for {m.label!r} has shape {m.cam.shape}; the image is {grey.shape}")
    n = len(maps) + 1
    fig = plt.figure(figsize=(PANEL_INCHES * n + 0.6, PANEL_INCHES + 1.0))
    try:
        grid = GridSpec(1, n + 1, figure=fig, width_ratios=[1.0] * n + [0.05])
        ax = fig.add_subplot(grid[0, 0])
        ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"input {grey.shape[1]}×{grey.shape[0]}", fontsize=9)
        ax.set_axis_off()
        for i, m in enumerate(maps, start=1):
            ax = fig.add_subplot(grid[0, i])
            ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
            ax.imshow(m.cam, cmap=CAM_CMAP, vmin=0.0, vmax=1.0, alpha=CAM_ALPHA)
            # Gradient methods rectify: a class the layer holds no evidence for gets an empty map,
            # which would otherwise look like a drawing that failed.
            ax.set_title(m.label if m.cam.max() > 0 else f"{m.label}\nno positive evidence at this layer", fontsize=9)
            ax.set_axis_off()
        # The colormap itself, opaque: the translucent overlay's colours depend on the image under it.
        bar = fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=CAM_CMAP), cax=fig.add_subplot(grid[0, n]))
        bar.set_label("class activation")
        fig.suptitle(title, fontsize=10)
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, path)


def feature_sheet(image: np.ndarray, blocks: Sequence[BlockMaps], path: Path, *, title: str) -> Path:
    """A row per block: its name and size, then its first channels, each on its own colour scale
    (channels differ in range by orders of magnitude; one scale would leave most of them flat)."""
    if not blocks:
        raise ValueError("no convolution block to draw")
    columns = max(len(b.maps) for b in blocks) + 1
    fig, axes = plt.subplots(len(blocks), columns, squeeze=False,
                             figsize=(FEATURE_PANEL_INCHES * columns, FEATURE_PANEL_INCHES * len(blocks) + 0.6))
    try:
        grey = grey_of(image)
        for row, block in zip(axes, blocks):
            row[0].imshow(grey, cmap="gray", vmin=0, vmax=255)
            _row_label(row[0], f"{block.name}\n{block.channels}×{block.maps.shape[1]}×{block.maps.shape[2]}")
            for c, ax in enumerate(row[1:]):
                if c < len(block.maps):
                    ax.imshow(block.maps[c], cmap=FEATURE_CMAP)
                    ax.set_title(f"channel {c}", fontsize=7)
                ax.set_axis_off()
        fig.suptitle(title, fontsize=10)
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, path)


def _row_label(ax, text: str) -> None:
    """No ticks or frame, but unlike axis("off") the y label (the block's name) still shows."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel(text, fontsize=8)
