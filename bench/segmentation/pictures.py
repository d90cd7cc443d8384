"""Pictures of segmentation results: overlays, mask files and contact sheets.

- overlay(): the grey image with the predicted mask as a translucent fill plus outline and the
  ground truth as an outline on top, as an (H, W, 3) uint8 array;
- write_overlay_png() / write_mask_png(): what `brainbench predict` writes per input image;
- slice_sheet(): the best, median and worst test slices by Dice on one PNG;
- attention_sheet(): an Attention U-Net's gate maps over a few slices on one PNG.

Images are grey uint8 (H, W) arrays; masks are boolean (H, W) arrays (0/1 integers are accepted
too, anything else is refused, as it is most likely probabilities passed without a threshold).
Every file is written atomically (temporary file in the same folder, then a rename), and figures
are saved and closed by bench.report.figure.save_figure, so none is left open.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.gridspec import GridSpec
from matplotlib.patches import Patch
from PIL import Image
from scipy.ndimage import binary_erosion

from bench.io import atomic_path
from bench.report.figure import plt, save_figure

log = logging.getLogger("brainbench")

# Okabe & Ito's palette (2008), made to stay distinguishable under the common colour-vision
# deficiencies (protanopia, deuteranopia, tritanopia): truth in its bluish green, prediction in its
# orange. The two also differ in lightness, so they stay apart in greyscale print, and neither is
# the red/green pair that deuteranopes, the largest group, cannot tell apart.
TRUTH_COLOUR = (0, 158, 115)  # Okabe-Ito "bluish green"
PRED_COLOUR = (230, 159, 0)  # Okabe-Ito "orange"
PRED_FILL_ALPHA = 0.35  # translucent enough to see the tissue under the predicted tumour
# Perceptually uniform and readable with colour-vision deficiencies; dark (low attention) dims the image.
ATTENTION_CMAP = "magma"
ATTENTION_ALPHA = 0.6

GROUPS = ("best", "median", "worst")
PANEL_INCHES = 2.6  # one image panel of a sheet; the sheets are saved at bench.report.figure.DPI
ATTENTION_MAX_ROWS = 4
ATTENTION_PANEL_INCHES = 2.2  # smaller: a row holds the image and every gate
CAPTION_CHARS = 36  # per line of a panel title at 8 pt on a PANEL_INCHES wide panel


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean (H, W): the mask's boundary, `width` pixels thick on its inside (mask minus its erosion).

    Mask pixels on the image edge count as boundary, so a mask cut by the edge is closed there.
    """
    mask = _mask(mask, "mask")
    if width < 1:
        raise ValueError(f"outline width must be at least 1 pixel, got {width}")
    if not mask.any():
        return mask.copy()
    return mask & ~binary_erosion(mask, iterations=width, border_value=0)


def overlay(image: np.ndarray, truth: np.ndarray | None, pred: np.ndarray, *,
            line_width: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB: the grey image, the prediction filled and outlined in PRED_COLOUR, the
    truth (when given) outlined in TRUTH_COLOUR on top. Pixels outside both masks keep their grey.

    line_width: outline thickness in pixels; by default 1 per 256 pixels of the longer side, so
    that outlines stay visible when a large image is shown small on a sheet.
    """
    image = _grey(image, "image")
    pred = _mask(pred, "pred")
    _same_shape(image, pred, "image", "pred")
    if truth is not None:
        truth = _mask(truth, "truth")
        _same_shape(image, truth, "image", "truth")
    if line_width is None:
        line_width = max(1, round(max(image.shape) / 256))
    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    pred_colour = np.asarray(PRED_COLOUR, dtype=np.float32)
    rgb[pred] = (1 - PRED_FILL_ALPHA) * rgb[pred] + PRED_FILL_ALPHA * pred_colour
    rgb[outline(pred, line_width)] = pred_colour
    if truth is not None:
        rgb[outline(truth, line_width)] = TRUTH_COLOUR
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def write_overlay_png(image: np.ndarray, pred: np.ndarray, path: str | os.PathLike,
                      truth: np.ndarray | None = None) -> Path:
    """The overlay of one image as an RGB PNG, written atomically; returns the path."""
    return _write_png(overlay(image, truth, pred), path)


def write_mask_png(pred: np.ndarray, path: str | os.PathLike) -> Path:
    """The predicted mask as an 8-bit greyscale PNG, 255 tumour and 0 background, written atomically."""
    pred = _mask(pred, "pred")
    return _write_png(np.where(pred, 255, 0).astype(np.uint8), path)


def pick_best_median_worst(dice: Sequence[float], per_group: int = 3) -> dict[str, list[int]]:
    """Indices of the `per_group` best, median and worst slices by Dice, keys "best", "median", "worst".

    Every list runs from higher to lower Dice (so "worst" ends with the worst slice); ties keep
    input order. With fewer than 3 * per_group slices each slice is shown once: they are split
    in rank order into three groups as even as possible, the later groups getting the fewer
    ("median" may then be empty, e.g. with two slices, and only "best" is filled with one).
    """
    if per_group < 1:
        raise ValueError(f"per_group must be at least 1, got {per_group}")
    values = np.asarray(dice, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"dice must be a non-empty list of numbers, got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"dice[{bad[0]}] is {values[bad[0]]}; every slice needs a finite Dice to be ranked")
    order = [int(i) for i in np.argsort(-values, kind="stable")]
    n = len(order)
    if n >= 3 * per_group:
        start = (n - per_group) // 2  # the per_group slices centred on the median rank
        return {"best": order[:per_group], "median": order[start:start + per_group],
                "worst": order[n - per_group:]}
    n_best = math.ceil(n / 3)
    n_worst = math.ceil((n - n_best) / 2)
    n_median = n - n_best - n_worst
    return {"best": order[:n_best], "median": order[n_best:n_best + n_median],
            "worst": order[n_best + n_median:]}


def slice_sheet(images: Sequence[np.ndarray], truths: Sequence[np.ndarray], preds: Sequence[np.ndarray],
                dice: Sequence[float], path: str | os.PathLike, *, title: str,
                captions: Sequence[str] | None = None, per_group: int = 3) -> Path:
    """One PNG: the best, median and worst test slices by Dice (one row each), every panel the
    overlay titled with its Dice and caption (e.g. file name and class), and a colour legend.

    Row order and choice are pick_best_median_worst(dice, per_group); empty rows are left out.
    """
    n = _check_lengths(images=images, truths=truths, preds=preds, dice=dice, captions=captions)
    for i in range(n):
        _same_shape(np.asarray(images[i]), np.asarray(truths[i]), f"images[{i}]", f"truths[{i}]")
        _same_shape(np.asarray(images[i]), np.asarray(preds[i]), f"images[{i}]", f"preds[{i}]")
    chosen = pick_best_median_worst(dice, per_group)
    rows = [(group, chosen[group]) for group in GROUPS if chosen[group]]
    panels = {i: overlay(images[i], truths[i], preds[i]) for _, indices in rows for i in indices}
    log.debug("slice sheet %s: %s", path, chosen)
    n_cols = max(len(indices) for _, indices in rows)
    caption_lines = 1 if captions is None else 1 + max(str(captions[i]).count("\n") + 1 for i in panels)
    # The legend is a thin first row, under the title: at the bottom it would sit below an empty
    # gap as tall as the panel titles (tight_layout spaces all rows alike).
    legend_ratio = 0.06 if n_cols > 1 else 0.14  # one column: the legend's two entries stack
    fig = plt.figure(figsize=(PANEL_INCHES * n_cols + 0.4,
                              (PANEL_INCHES + 0.17 * caption_lines) * (len(rows) + legend_ratio) + 0.3))
    try:
        grid = GridSpec(len(rows) + 1, n_cols, figure=fig, height_ratios=[legend_ratio] + [1.0] * len(rows))
        for r, (group, indices) in enumerate(rows):
            for c in range(n_cols):
                ax = fig.add_subplot(grid[r + 1, c])
                if c >= len(indices):
                    ax.axis("off")
                    continue
                i = indices[c]
                ax.imshow(panels[i], interpolation="antialiased")
                _bare(ax)
                label = f"Dice {float(dice[i]):.3f}"
                if captions is not None:
                    label += f"\n{_shorten(captions[i])}"
                ax.set_title(label, fontsize=8)
                if c == 0:
                    ax.set_ylabel(group, fontsize=11, fontweight="bold")
        legend_ax = fig.add_subplot(grid[0, :])
        legend_ax.axis("off")
        legend_ax.legend(handles=[Patch(facecolor="none", edgecolor=_rgb01(TRUTH_COLOUR), linewidth=2,
                                        label="ground truth (outline)"),
                                  Patch(facecolor=_rgb01(PRED_COLOUR) + (PRED_FILL_ALPHA,),
                                        edgecolor=_rgb01(PRED_COLOUR), linewidth=2,
                                        label="prediction (fill and outline)")],
                         loc="center", ncol=2 if n_cols > 1 else 1, fontsize=9, frameon=False)
        fig.suptitle(title, fontsize=11)
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, Path(path))


def attention_sheet(images: Sequence[np.ndarray], attention: Sequence[np.ndarray], path: str | os.PathLike, *,
                    title: str, captions: Sequence[str] | None = None,
                    max_rows: int = ATTENTION_MAX_ROWS) -> Path:
    """One PNG of an Attention U-Net's gates: a row per slice (the first `max_rows`), columns the
    image and then each gate's map upsampled to the image and drawn over it, with one colorbar.

    attention[g] is the (N, h_g, w_g) map of gate g in [0, 1], finest gate first; coarser gates
    have lower resolution and are upsampled bilinearly for display.
    """
    n = _check_lengths(images=images, captions=captions)
    if len(attention) == 0:
        raise ValueError("attention holds no gate; expected one (N, h, w) array per attention gate")
    maps = [np.asarray(a) for a in attention]
    for g, a in enumerate(maps):
        if a.ndim != 3 or a.shape[0] != n:
            raise ValueError(f"attention[{g}] has shape {a.shape}; expected ({n}, h, w) for {n} images")
        if a.shape[1] == 0 or a.shape[2] == 0:
            raise ValueError(f"attention[{g}] has shape {a.shape}; its maps are empty")
        if not np.all(np.isfinite(a)) or a.min() < -1e-6 or a.max() > 1 + 1e-6:
            raise ValueError(f"attention[{g}] holds values outside [0, 1] (min {np.nanmin(a):.3g}, "
                             f"max {np.nanmax(a):.3g}); pass the gates' sigmoid coefficients")
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    shown = min(n, max_rows)
    if shown < n:
        log.info("attention sheet %s: showing the first %d of %d slices", path, shown, n)
    greys = [_grey(images[i], f"images[{i}]") for i in range(shown)]
    n_gates = len(maps)
    caption_lines = 0 if captions is None else max(str(captions[i]).count("\n") + 1 for i in range(shown))
    fig = plt.figure(figsize=(ATTENTION_PANEL_INCHES * (n_gates + 1) + 0.9,
                              (ATTENTION_PANEL_INCHES + 0.17 * caption_lines) * shown + 0.6))
    try:
        grid = GridSpec(shown, n_gates + 2, figure=fig, width_ratios=[1.0] * (n_gates + 1) + [0.06])
        for r, grey in enumerate(greys):
            ax = fig.add_subplot(grid[r, 0])
            ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
            _bare(ax)
            if r == 0:
                ax.set_title("image" if captions is None else f"image\n{_shorten(captions[0])}", fontsize=9)
            elif captions is not None:
                ax.set_title(_shorten(captions[r]), fontsize=8)
            for g, a in enumerate(maps):
                ax = fig.add_subplot(grid[r, g + 1])
                ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
                ax.imshow(_upsample(a[r], grey.shape), cmap=ATTENTION_CMAP, vmin=0.0, vmax=1.0, alpha=ATTENTION_ALPHA)
                _bare(ax)
                if r == 0:
                    ax.set_title(_gate_title(g, n_gates, a.shape[1:]), fontsize=9)
        # The colormap itself, opaque: the translucent maps' blend depends on the image under them.
        colorbar = fig.colorbar(ScalarMappable(norm=Normalize(0.0, 1.0), cmap=ATTENTION_CMAP),
                                cax=fig.add_subplot(grid[:, n_gates + 1]))
        colorbar.set_label("attention coefficient")
        fig.suptitle(title, fontsize=11)
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, Path(path))


def _gate_title(g: int, n_gates: int, size: tuple[int, int]) -> str:
    which = " (finest)" if g == 0 and n_gates > 1 else " (coarsest)" if g == n_gates - 1 and n_gates > 1 else ""
    return f"gate {g + 1}{which}\n{size[0]}×{size[1]} map"


def _upsample(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """One gate map resized bilinearly to `shape` (H, W), clipped back into [0, 1]."""
    if a.shape == shape:
        return a.astype(np.float32)
    resized = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32)).resize(
        (shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized), 0.0, 1.0)


def _shorten(caption, width: int = CAPTION_CHARS) -> str:
    """Each line of a caption cut in the middle to `width` characters, so panel titles never overlap."""
    lines = str(caption).splitlines() or [""]
    half = (width - 1) // 2
    return "\n".join(line if len(line) <= width else f"{line[:half]}…{line[-(width - 1 - half):]}" for line in lines)


def _bare(ax) -> None:
    """No ticks or frame, but unlike axis("off") the y label (row name) still shows."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _rgb01(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in colour)


def _write_png(pixels: np.ndarray, path: str | os.PathLike) -> Path:
    path = Path(path)
    picture = Image.fromarray(pixels)  # uint8 (H, W, 3) is RGB, uint8 (H, W) is L
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")  # the temporary name ends in .tmp: the format must be said
    return path


def _grey(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"{name} must be a grey (H, W) image, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (0..255), got dtype {image.dtype}; convert it before drawing")
    return image


def _mask(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"{name} must be a (H, W) mask, got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return mask
    # Anything but 0/1 is most likely probabilities or logits passed without a threshold.
    if not np.issubdtype(mask.dtype, np.number) or not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"{name} must be boolean or 0/1, got dtype {mask.dtype} with other values")
    return mask.astype(bool)


def _same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} differ in shape: {name_a} {a.shape}, {name_b} {b.shape}")


def _check_lengths(**sequences) -> int:
    """The common length of the given sequences (None ones are skipped); ValueError naming all sizes."""
    sizes = {name: len(s) for name, s in sequences.items() if s is not None}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} {size}" for name, size in sizes.items())
        raise ValueError(f"inputs differ in length: {listed}")
    n = next(iter(sizes.values()))
    if n == 0:
        raise ValueError(f"nothing to draw: {', '.join(sizes)} are empty")
    return n
