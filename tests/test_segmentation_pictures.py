"""Segmentation pictures: outlines, overlays, mask and overlay PNGs, best/median/worst and attention sheets."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.report.figure import plt
from bench.segmentation.pictures import (
    PRED_COLOUR,
    PRED_FILL_ALPHA,
    TRUTH_COLOUR,
    attention_sheet,
    outline,
    overlay,
    pick_best_median_worst,
    slice_sheet,
    write_mask_png,
    write_overlay_png,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIZE = 64


def disc(size: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def scan(rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A bright disc (the 'tumour', also the truth mask) on dim noise."""
    truth = disc(size, size / 2, size / 2, size / 5)
    image = rng.integers(20, 90, size=(size, size)).astype(np.uint8)
    image[truth] = 200
    return image, truth


def cases(n: int, seed: int = 0):
    """n images with truths and predictions shifted by a growing amount, so Dice falls with the index."""
    rng = np.random.default_rng(seed)
    images, truths, preds, dice = [], [], [], []
    for i in range(n):
        image, truth = scan(rng)
        pred = np.roll(truth, shift=i, axis=1)
        images.append(image)
        truths.append(truth)
        preds.append(pred)
        dice.append(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    return images, truths, preds, dice


@pytest.fixture(autouse=True)
def no_leaked_figures():
    before = len(plt.get_fignums())
    yield
    assert len(plt.get_fignums()) == before


def read_png(path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as picture:
        picture.load()
        return np.asarray(picture)


def test_outline_of_a_square_is_its_border():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:7, 3:8] = True  # a 5 x 5 square
    border = outline(mask)
    assert border.dtype == np.bool_
    assert border.sum() == 4 * 5 - 4 == 16
    assert border[2, 3:8].all() and border[6, 3:8].all() and border[2:7, 3].all() and border[2:7, 7].all()
    assert not border[3:6, 4:7].any()  # the 3 x 3 inside
    assert not (border & ~mask).any()
    assert outline(mask, width=2).sum() == 25 - 1  # only the centre pixel is two steps from the outside


def test_outline_of_empty_and_edge_masks():
    assert not outline(np.zeros((5, 5), dtype=bool)).any()
    full = np.ones((4, 6), dtype=bool)
    assert outline(full).sum() == 2 * 6 + 2 * 4 - 4  # the image edge closes a mask that touches it
    assert outline(full.astype(np.uint8)).sum() == 16  # 0/1 integers are masks too


def test_overlay_colours():
    rng = np.random.default_rng(1)
    image, truth = scan(rng)
    pred = np.roll(truth, 6, axis=1)
    rgb = overlay(image, truth, pred, line_width=1)
    assert rgb.shape == (SIZE, SIZE, 3) and rgb.dtype == np.uint8
    truth_line = outline(truth)
    assert (rgb[truth_line] == TRUTH_COLOUR).all()
    pred_line = outline(pred) & ~truth_line
    assert pred_line.any() and (rgb[pred_line] == PRED_COLOUR).all()
    pred_only = pred & ~truth & ~outline(pred) & ~truth_line
    assert pred_only.any()
    grey = image[pred_only].astype(float)[:, None]
    expected = np.rint((1 - PRED_FILL_ALPHA) * grey + PRED_FILL_ALPHA * np.asarray(PRED_COLOUR, dtype=float))
    assert np.abs(rgb[pred_only].astype(int) - expected).max() <= 1
    assert (rgb[pred_only] != image[pred_only, None]).any(axis=1).all()  # every one of them is tinted
    background = ~pred & ~truth
    assert (rgb[background] == image[background, None]).all()  # unchanged grey, all three channels


def test_overlay_without_truth_and_default_line_width():
    image = np.full((512, 512), 100, dtype=np.uint8)
    pred = disc(512, 256, 256, 60)
    rgb = overlay(image, None, pred)
    assert (rgb[outline(pred, width=2)] == PRED_COLOUR).all()  # 2 px lines on a 512 px image
    assert not (rgb == TRUTH_COLOUR).all(axis=2).any()
    assert (rgb[~pred] == 100).all()


def test_overlay_refuses_bad_input():
    image = np.zeros((8, 8), dtype=np.uint8)
    mask = np.zeros((8, 8), dtype=bool)
    with pytest.raises(ValueError, match=r"\(8, 8\).*\(8, 9\)"):
        overlay(image, None, np.zeros((8, 9), dtype=bool))
    with pytest.raises(ValueError, match="truth"):
        overlay(image, np.zeros((7, 8), dtype=bool), mask)
    with pytest.raises(ValueError, match="0/1"):
        overlay(image, None, np.full((8, 8), 0.7))
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.astype(np.float32), None, mask)
    with pytest.raises(ValueError, match=r"\(8, 8, 3\)"):
        overlay(np.zeros((8, 8, 3), dtype=np.uint8), None, mask)


def test_write_overlay_and_mask_png(tmp_path):
    rng = np.random.default_rng(2)
    image, truth = scan(rng)
    image = image[:, :50]  # not square: width and height must not be swapped
    truth = truth[:, :50]
    pred = np.roll(truth, 3, axis=0)
    out = write_overlay_png(image, pred, tmp_path / "out" / "scan_overlay.png", truth=truth)
    assert out == tmp_path / "out" / "scan_overlay.png"
    pixels = read_png(out)
    assert pixels.shape == (SIZE, 50, 3)
    assert (pixels == overlay(image, truth, pred)).all()

    mask_path = write_mask_png(pred, tmp_path / "out" / "scan_mask.png")
    with Image.open(mask_path) as picture:
        assert picture.mode == "L" and picture.size == (50, SIZE)
    stored = read_png(mask_path)
    assert stored.dtype == np.uint8 and set(np.unique(stored)) == {0, 255}
    assert ((stored == 255) == pred).all()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scan_mask.png", "scan_overlay.png"]


def test_pick_best_median_worst():
    dice = [0.5, 0.9, 0.1, 0.7, 0.3, 0.95, 0.6, 0.2, 0.8, 0.4]
    chosen = pick_best_median_worst(dice, per_group=3)
    assert chosen == {"best": [5, 1, 8], "median": [3, 6, 0], "worst": [4, 7, 2]}
    shown = [i for group in chosen.values() for i in group]
    assert len(shown) == len(set(shown)) == 9
    for group in chosen.values():  # every row runs from higher to lower Dice
        assert [dice[i] for i in group] == sorted((dice[i] for i in group), reverse=True)
    assert chosen["best"][0] == int(np.argmax(dice)) and chosen["worst"][-1] == int(np.argmin(dice))


@pytest.mark.parametrize("n", range(1, 10))
def test_pick_with_few_slices_shows_each_once(n):
    dice = list(np.random.default_rng(n).random(n))
    chosen = pick_best_median_worst(dice, per_group=3)
    shown = chosen["best"] + chosen["median"] + chosen["worst"]
    assert sorted(shown) == list(range(n))  # all of them, none twice
    assert [dice[i] for i in shown] == sorted(dice, reverse=True)
    assert chosen["best"][0] == int(np.argmax(dice))
    if n >= 2:
        assert chosen["worst"][-1] == int(np.argmin(dice))
    assert all(len(group) <= 3 for group in chosen.values())


def test_pick_two_and_ties():
    assert pick_best_median_worst([0.2, 0.8]) == {"best": [1], "median": [], "worst": [0]}
    assert pick_best_median_worst([0.5, 0.5, 0.5], per_group=1) == {"best": [0], "median": [1], "worst": [2]}
    with pytest.raises(ValueError, match="nan"):
        pick_best_median_worst([0.5, float("nan")])
    with pytest.raises(ValueError, match="non-empty"):
        pick_best_median_worst([])
    with pytest.raises(ValueError, match="per_group"):
        pick_best_median_worst([0.5], per_group=0)


@pytest.mark.parametrize("n", [10, 2])
def test_slice_sheet_writes_png(tmp_path, n):
    images, truths, preds, dice = cases(n)
    captions = [f"Te-gl_{i:04d}.jpg\nglioma" for i in range(n)]
    out = slice_sheet(images, truths, preds, dice, tmp_path / f"sheet{n}.png", title="unet.small: test slices",
                      captions=captions)
    pixels = read_png(out)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert out.stat().st_size < 1_000_000


def test_slice_sheet_refuses_mismatched_input(tmp_path):
    images, truths, preds, dice = cases(4)
    with pytest.raises(ValueError, match="images 4, truths 4, preds 3, dice 4"):
        slice_sheet(images, truths, preds[:3], dice, tmp_path / "x.png", title="t")
    with pytest.raises(ValueError, match="captions 2"):
        slice_sheet(images, truths, preds, dice, tmp_path / "x.png", title="t", captions=["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        slice_sheet([], [], [], [], tmp_path / "x.png", title="t")
    preds[1] = preds[1][:, :10]
    with pytest.raises(ValueError, match=r"preds\[1\].*\(64, 10\)"):
        slice_sheet(images, truths, preds, dice, tmp_path / "x.png", title="t")
    assert not tmp_path.joinpath("x.png").exists()


def test_attention_sheet_writes_png(tmp_path):
    images, _, _, _ = cases(3)
    rng = np.random.default_rng(3)
    fine = rng.random((3, 32, 32))
    coarse = rng.random((3, 8, 8))
    out = attention_sheet(images, [fine, coarse], tmp_path / "attention.png", title="attention_unet: gates",
                          captions=["a.jpg", "b.jpg", "c.jpg"])
    pixels = read_png(out)
    assert pixels.ndim == 3 and pixels.shape[1] > pixels.shape[0] / 2
    assert out.stat().st_size < 1_000_000


def test_attention_sheet_refuses_bad_input(tmp_path):
    images, _, _, _ = cases(3)
    good = np.full((3, 16, 16), 0.5)
    with pytest.raises(ValueError, match=r"attention\[1\].*\(2, 8, 8\).*3 images"):
        attention_sheet(images, [good, np.zeros((2, 8, 8))], tmp_path / "a.png", title="t")
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        attention_sheet(images, [good * 3], tmp_path / "a.png", title="t")
    with pytest.raises(ValueError, match="no gate"):
        attention_sheet(images, [], tmp_path / "a.png", title="t")
    with pytest.raises(ValueError, match="images 3, captions 1"):
        attention_sheet(images, [good], tmp_path / "a.png", title="t", captions=["a"])
    assert not tmp_path.joinpath("a.png").exists()
