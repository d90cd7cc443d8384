"""Segmentation metrics on hand-computed masks and against scikit-learn; bootstrap behaviour and cost."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, precision_score, recall_score

from bench.evaluate.bootstrap import percentile_interval, resample_indices
from bench.segmentation.metrics import dice_iou, mask_agreement, pixel_counts, segmentation_metrics

PER_IMAGE = ("dice", "iou", "pixel_acc", "precision", "recall", "fpr", "fnr")


def square(size: int, top: int, left: int, side: int) -> np.ndarray:
    """A (size, size) boolean mask with a side x side square whose top-left pixel is (top, left)."""
    mask = np.zeros((size, size), dtype=bool)
    mask[top:top + side, left:left + side] = True
    return mask


def random_masks(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Truth squares of random size and place, predictions that are the truth with pixels flipped."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        side = int(rng.integers(3, size // 2))
        top, left = rng.integers(0, size - side, size=2)
        truth[i, top:top + side, left:left + side] = True
    flip = rng.random(truth.shape) < rng.uniform(0.02, 0.2, size=(n, 1, 1))
    return truth ^ flip, truth


# ---------------------------------------------------------------- hand-computed cases


def test_identical_masks_are_perfect():
    truth = np.stack([square(8, 2, 2, 4), square(8, 0, 1, 3)])
    row = segmentation_metrics(truth, truth.copy())
    for name in ("dice", "iou", "precision", "recall", "pixel_acc", "pooled_dice", "pooled_iou",
                 "pooled_precision", "pooled_recall", "dice_median"):
        assert row[name] == 1.0, name
    assert row["fpr"] == 0.0 and row["fnr"] == 0.0
    assert row["dice_ci95"] == [1.0, 1.0] and row["fpr_ci95"] == [0.0, 0.0]
    assert row["dice_per_image"] == [1.0, 1.0] and row["empty_predictions"] == 0 and row["n_images"] == 2


def test_square_shifted_by_one_column():
    # Truth rows 2-5, cols 2-5 (16 px); prediction cols 3-6: overlap 4x3 = 12, 4 px each side wrong.
    truth = square(8, 2, 2, 4)[None]
    pred = square(8, 2, 3, 4)[None]
    assert pixel_counts(pred, truth).tolist() == [[12, 4, 4, 44]]
    row = segmentation_metrics(pred, truth)
    assert row["dice"] == 0.75  # 2*12 / (24 + 4 + 4)
    assert row["iou"] == 12 / 20
    assert row["pixel_acc"] == 56 / 64
    assert row["precision"] == 0.75 and row["recall"] == 0.75
    assert row["fpr"] == 4 / 48 and row["fnr"] == 0.25
    # One image: every resample is that image, the interval is the point.
    assert row["dice_ci95"] == [0.75, 0.75] and row["pooled_iou_ci95"] == [0.6, 0.6]


def test_square_shifted_diagonally():
    # Shift by (1, 1): overlap 3x3 = 9, 7 px false positive, 7 missed.
    truth = square(8, 2, 2, 4)[None]
    pred = square(8, 3, 3, 4)[None]
    dice, iou = dice_iou(pred, truth)
    assert dice.tolist() == [18 / 32] and iou.tolist() == [9 / 23]
    assert math.isclose(iou[0], dice[0] / (2 - dice[0]))


def test_pooled_weights_big_tumours_mean_weights_images():
    # Image 0: an 8x8 tumour found exactly. Image 1: a 2x2 tumour, prediction one column off.
    truth = np.stack([square(16, 4, 4, 8), square(16, 0, 0, 2)])
    pred = np.stack([square(16, 4, 4, 8), square(16, 0, 1, 2)])
    row = segmentation_metrics(pred, truth)
    assert row["dice_per_image"] == [1.0, 0.5]  # small: 2*2 / (4 + 2 + 2)
    assert row["dice"] == 0.75 and row["dice_median"] == 0.75
    assert row["iou"] == (1 + 1 / 3) / 2
    # Pooled: tp = 64 + 2, fp = 2, fn = 2.
    assert row["pooled_dice"] == 132 / 136
    assert row["pooled_iou"] == 66 / 70
    assert row["pooled_precision"] == 66 / 68 and row["pooled_recall"] == 66 / 68
    assert row["pooled_dice"] > row["dice"]


# ---------------------------------------------------------------- empty conventions


def test_both_empty_is_a_correct_no_tumour():
    empty = np.zeros((1, 8, 8), dtype=bool)
    row = segmentation_metrics(empty, empty)
    for name in ("dice", "iou", "precision", "recall", "pixel_acc", "pooled_dice", "pooled_iou",
                 "pooled_precision", "pooled_recall"):
        assert row[name] == 1.0, name
    assert row["fpr"] == 0.0 and row["fnr"] == 0.0
    assert row["empty_predictions"] == 1
    assert mask_agreement(empty, empty) == 1.0


def test_empty_prediction_of_a_tumour_scores_zero():
    truth = square(8, 2, 2, 4)[None]
    pred = np.zeros_like(truth)
    row = segmentation_metrics(pred, truth)
    assert row["dice"] == 0.0 and row["iou"] == 0.0
    assert row["precision"] == 0.0 and row["recall"] == 0.0
    assert row["fnr"] == 1.0 and row["fpr"] == 0.0
    assert row["pixel_acc"] == 48 / 64
    assert row["empty_predictions"] == 1


def test_false_alarm_on_a_tumour_free_image():
    truth = np.zeros((1, 8, 8), dtype=bool)
    pred = square(8, 0, 0, 2)[None]
    row = segmentation_metrics(pred, truth)
    assert row["dice"] == 0.0 and row["iou"] == 0.0
    assert row["precision"] == 0.0 and row["recall"] == 0.0
    assert row["fnr"] == 1.0  # recall + fnr = 1 on every image, also here
    assert row["fpr"] == 4 / 64
    assert row["empty_predictions"] == 0


def test_whole_image_tumour_has_no_false_positive_rate():
    truth = np.ones((1, 4, 4), dtype=bool)
    pred = square(4, 0, 0, 2)[None]
    row = segmentation_metrics(pred, truth)
    assert row["fpr"] == 0.0 and row["recall"] == 4 / 16 and row["fnr"] == 12 / 16


def test_recall_plus_fnr_is_one_per_image():
    pred, truth = random_masks(50, seed=3)
    pred[:5] = False
    truth[5:10] = False
    row = segmentation_metrics(pred, truth)
    assert math.isclose(row["recall"] + row["fnr"], 1.0)
    assert row["empty_predictions"] == 5


# ---------------------------------------------------------------- against scikit-learn


def test_per_image_metrics_match_sklearn():
    pred, truth = random_masks(20, seed=1)
    row = segmentation_metrics(pred, truth)
    dice, iou = dice_iou(pred, truth)
    for i in range(len(pred)):
        p, t = pred[i].ravel(), truth[i].ravel()
        assert math.isclose(dice[i], f1_score(t, p))
        assert math.isclose(iou[i], jaccard_score(t, p))
        assert math.isclose(row["dice_per_image"][i], f1_score(t, p))
    expected = {
        "dice": [f1_score(t.ravel(), p.ravel()) for p, t in zip(pred, truth)],
        "iou": [jaccard_score(t.ravel(), p.ravel()) for p, t in zip(pred, truth)],
        "precision": [precision_score(t.ravel(), p.ravel()) for p, t in zip(pred, truth)],
        "recall": [recall_score(t.ravel(), p.ravel()) for p, t in zip(pred, truth)],
        "pixel_acc": [accuracy_score(t.ravel(), p.ravel()) for p, t in zip(pred, truth)],
        "fpr": [1 - recall_score(t.ravel(), p.ravel(), pos_label=False) for p, t in zip(pred, truth)],
        "fnr": [1 - recall_score(t.ravel(), p.ravel()) for p, t in zip(pred, truth)],
    }
    for name, values in expected.items():
        assert math.isclose(row[name], float(np.mean(values))), name


def test_pooled_metrics_match_sklearn_on_all_pixels():
    pred, truth = random_masks(20, seed=2)
    row = segmentation_metrics(pred, truth)
    p, t = pred.ravel(), truth.ravel()
    assert math.isclose(row["pooled_dice"], f1_score(t, p))
    assert math.isclose(row["pooled_iou"], jaccard_score(t, p))
    assert math.isclose(row["pooled_precision"], precision_score(t, p))
    assert math.isclose(row["pooled_recall"], recall_score(t, p))


def test_zero_one_integer_masks_equal_boolean_masks():
    pred, truth = random_masks(10, seed=4)
    assert segmentation_metrics(pred.astype(np.uint8), truth.astype(np.float32)) == segmentation_metrics(pred, truth)


# ---------------------------------------------------------------- bootstrap intervals


def test_intervals_match_a_direct_resampling():
    pred, truth = random_masks(60, seed=5)
    row = segmentation_metrics(pred, truth, seed=7)
    indices = resample_indices(60, 1000, seed=7)
    dice, iou = dice_iou(pred, truth)
    assert np.allclose(row["dice_ci95"], percentile_interval(dice[indices].mean(axis=1)))
    assert np.allclose(row["iou_ci95"], percentile_interval(iou[indices].mean(axis=1)))
    counts = pixel_counts(pred, truth)[indices].sum(axis=1)  # (R, 4) tp, fp, fn, tn
    tp, fp, fn = counts[:, 0], counts[:, 1], counts[:, 2]
    assert np.allclose(row["pooled_dice_ci95"], percentile_interval(2 * tp / (2 * tp + fp + fn)))
    assert np.allclose(row["pooled_iou_ci95"], percentile_interval(tp / (tp + fp + fn)))


def test_intervals_contain_the_estimate_and_narrow_with_more_images():
    few = segmentation_metrics(*random_masks(30, seed=6))
    many = segmentation_metrics(*random_masks(480, seed=6))
    for row in (few, many):
        for name in PER_IMAGE + ("pooled_dice", "pooled_iou"):
            low, high = row[f"{name}_ci95"]
            assert 0.0 <= low <= row[name] <= high <= 1.0, name
            assert isinstance(low, float) and isinstance(high, float)
    for name in ("dice", "iou", "pooled_dice"):
        width_few = few[f"{name}_ci95"][1] - few[f"{name}_ci95"][0]
        width_many = many[f"{name}_ci95"][1] - many[f"{name}_ci95"][0]
        assert 0 < width_many < width_few / 2, name  # 16x the images: about 4x narrower


def test_same_seed_same_interval():
    pred, truth = random_masks(40, seed=8)
    first = segmentation_metrics(pred, truth, seed=3)
    assert segmentation_metrics(pred, truth, seed=3) == first
    other = segmentation_metrics(pred, truth, seed=4)
    assert other["dice_ci95"] != first["dice_ci95"]
    assert other["dice"] == first["dice"]


def test_too_few_resamples_are_refused():
    pred, truth = random_masks(5, seed=9)
    with pytest.raises(ValueError, match="resamples"):
        segmentation_metrics(pred, truth, resamples=100)


# ---------------------------------------------------------------- per class


def test_per_class_keys_and_counts():
    truth = np.stack([square(8, 2, 2, 4)] * 3)
    pred = np.stack([square(8, 2, 2, 4), square(8, 2, 3, 4), square(8, 3, 3, 4)])
    row = segmentation_metrics(pred, truth, classes=["pituitary", "glioma", "glioma"])
    assert row["n_glioma"] == 2 and row["n_pituitary"] == 1
    assert row["dice_glioma"] == (0.75 + 18 / 32) / 2 and row["dice_pituitary"] == 1.0
    assert row["iou_glioma"] == (12 / 20 + 9 / 23) / 2 and row["iou_pituitary"] == 1.0
    assert row["dice_pituitary_ci95"] == [1.0, 1.0]
    low, high = row["dice_glioma_ci95"]
    assert 18 / 32 <= low <= row["dice_glioma"] <= high <= 0.75
    per_class = [k for k in row if k.endswith(("_glioma", "_pituitary", "_glioma_ci95", "_pituitary_ci95"))]
    assert per_class == ["dice_glioma", "dice_glioma_ci95", "iou_glioma", "n_glioma",
                         "dice_pituitary", "dice_pituitary_ci95", "iou_pituitary", "n_pituitary"]


def test_class_names_set_the_order_and_may_name_an_absent_class():
    pred, truth = random_masks(6, seed=10)
    row = segmentation_metrics(pred, truth, classes=["glioma"] * 3 + ["pituitary"] * 3,
                               class_names=["pituitary", "meningioma", "glioma"])
    assert [k for k in row if k.startswith("n_") and k != "n_images"] == ["n_pituitary", "n_meningioma", "n_glioma"]
    assert row["n_meningioma"] == 0
    assert math.isnan(row["dice_meningioma"]) and math.isnan(row["iou_meningioma"])
    assert all(math.isnan(v) for v in row["dice_meningioma_ci95"])
    dice, _ = dice_iou(pred, truth)
    assert math.isclose(row["dice_glioma"], dice[:3].mean()) and math.isclose(row["dice_pituitary"], dice[3:].mean())


def test_no_per_class_keys_without_classes():
    row = segmentation_metrics(*random_masks(4, seed=11))
    assert not [k for k in row if k.startswith("n_") and k != "n_images"]


@pytest.mark.parametrize("kwargs, message", [
    ({"classes": ["glioma"] * 3}, "3 entries but there are 4 masks"),
    ({"classes": ["glioma"] * 4, "class_names": ["pituitary"]}, "not among class_names"),
    ({"classes": ["glioma"] * 4, "class_names": ["glioma", "glioma"]}, "unique"),
    ({"class_names": ["glioma"]}, "without classes"),
])
def test_bad_classes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        segmentation_metrics(*random_masks(4, seed=12), **kwargs)


# ---------------------------------------------------------------- input checks


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError) as error:
        segmentation_metrics(np.zeros((3, 4, 4), bool), np.zeros((3, 4, 5), bool))
    assert "(3, 4, 4)" in str(error.value) and "(3, 4, 5)" in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"\(2, 4, 4\).*\(3, 4, 4\)"):
        mask_agreement(np.zeros((2, 4, 4), bool), np.zeros((3, 4, 4), bool))


def test_no_images_names_the_shape():
    with pytest.raises(ValueError, match=r"\(0, 4, 4\)"):
        segmentation_metrics(np.zeros((0, 4, 4), bool), np.zeros((0, 4, 4), bool))


def test_masks_must_be_three_dimensional_and_binary():
    with pytest.raises(ValueError, match=r"\(N, H, W\).*\(4, 4\)"):
        segmentation_metrics(np.zeros((4, 4), bool), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="boolean or 0/1"):
        segmentation_metrics(np.full((1, 4, 4), 0.7), np.zeros((1, 4, 4), bool))


# ---------------------------------------------------------------- agreement, result shape, cost


def test_mask_agreement():
    pred, _ = random_masks(10, seed=13)
    assert mask_agreement(pred, pred.copy()) == 1.0
    assert mask_agreement(pred, ~pred) == 0.0
    a = np.stack([square(8, 2, 2, 4), np.zeros((8, 8), bool)])
    b = np.stack([square(8, 2, 3, 4), np.zeros((8, 8), bool)])
    assert mask_agreement(a, b) == (12 / 20 + 1.0) / 2
    assert mask_agreement(a, b) == mask_agreement(b, a)


def test_result_is_flat_json_with_the_documented_keys():
    pred, truth = random_masks(8, seed=14)
    row = segmentation_metrics(pred, truth, classes=["glioma", "meningioma"] * 4)
    expected = {"n_images", "dice_median", "dice_per_image", "empty_predictions"}
    expected |= set(PER_IMAGE) | {f"{name}_ci95" for name in PER_IMAGE}
    expected |= {f"pooled_{name}" for name in ("dice", "iou", "precision", "recall")}
    expected |= {"pooled_dice_ci95", "pooled_iou_ci95"}
    for c in ("glioma", "meningioma"):
        expected |= {f"dice_{c}", f"dice_{c}_ci95", f"iou_{c}", f"n_{c}"}
    assert set(row) == expected
    assert json.loads(json.dumps(row)) == row
    assert len(row["dice_per_image"]) == 8 and all(type(v) is float for v in row["dice_per_image"])
    assert type(row["n_images"]) is int and type(row["empty_predictions"]) is int


def test_600_masks_of_128_pixels_are_fast():
    rng = np.random.default_rng(15)
    truth = np.zeros((600, 128, 128), dtype=bool)
    truth[:, 40:80, 30:90] = True
    pred = truth ^ (rng.random(truth.shape) < 0.05)
    classes = rng.choice(["glioma", "meningioma", "pituitary"], size=600).tolist()
    start = time.perf_counter()
    row = segmentation_metrics(pred, truth, classes=classes)
    elapsed = time.perf_counter() - start
    assert row["n_images"] == 600
    assert elapsed < 2.0, f"segmentation metrics of 600 masks took {elapsed:.3f} s"
