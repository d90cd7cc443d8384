"""Segmentation metrics of one prediction pass, as a flat, JSON-ready result dict.

Every metric is a function of one image's pixel confusion counts: tp (tumour predicted as
tumour), fp (background predicted as tumour), fn (tumour missed) and tn (background kept):
- dice = 2tp / (2tp + fp + fn): overlap of the two masks relative to their mean size (F1 of pixels);
- iou = tp / (tp + fp + fn): overlap relative to the union (Jaccard); iou = dice / (2 - dice);
- pixel_acc = (tp + tn) / all pixels: dominated by the background, high even for poor masks;
- precision = tp / (tp + fp): share of the predicted tumour that is tumour;
- recall = tp / (tp + fn): share of the tumour found (sensitivity);
- fpr = fp / (fp + tn): share of the background marked as tumour;
- fnr = fn / (fn + tp): share of the tumour missed.
All are fractions in [0, 1], never percent.

Per-image mean and pooled, both: the mean of per-image Dice gives every image the same weight, so
a small tumour that is missed costs as much as a large one; pooled Dice sums the counts of all
images into one confusion first, so it weights each image by its tumour size and says how much of
all tumour tissue was delineated. A model that finds big tumours and misses small ones has a high
pooled and a lower mean Dice; the gap between the two is informative, which is why both are kept.

Empty denominators (figshare truth masks are never empty, but predictions can be, and other data
sets may hold images without tumour):
- both masks empty: dice = iou = 1, a correct "no tumour";
- no predicted pixel: precision = 1 if the truth is empty too, else 0 (a missed tumour earns nothing);
- no true pixel: recall = 1 if nothing was predicted, else 0 (a false alarm on a tumour-free image
  counts as a failure), and fnr = 1 - recall in that case, so that recall + fnr = 1 on every image;
- no true background pixel (the whole image is tumour): fpr = 0, as no pixel could be a false alarm.
The same conventions apply to the pooled counts, where they matter only if every image is empty.

Intervals are 95 % percentile bootstrap intervals over images (bench.evaluate.bootstrap): an image
is the unit that was sampled, its pixels are not independent. One resample is fully described by
how often it draws each image, so the (R, N) matrix of draw counts times a per-image table gives
every resample's sums in one matrix product, per-image means and pooled counts alike.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from bench.evaluate.bootstrap import DEFAULT_RESAMPLES, percentile_interval, resample_indices
from bench.evaluate.metrics import MIN_RESAMPLES

# Order of the per-image metrics in the tables below and of the reported keys.
PER_IMAGE_METRICS = ("dice", "iou", "pixel_acc", "precision", "recall", "fpr", "fnr")
POOLED_METRICS = ("dice", "iou", "precision", "recall")
POOLED_INTERVALS = ("dice", "iou")


def segmentation_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    *,
    classes: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict:
    """All segmentation metrics of one split as a flat dict of plain floats, ints and lists.

    pred, truth: (N, H, W) boolean or 0/1 masks, one pair per test image. classes: optional (N,)
    tumour class name of each image; class_names: the order of the per-class keys (default: the
    sorted distinct classes), a name absent from `classes` gets n_<c> = 0 and NaN metrics.
    """
    return metrics_from_counts(pixel_counts(pred, truth), classes=classes, class_names=class_names,
                               resamples=resamples, seed=seed)


def metrics_from_counts(counts: np.ndarray, *, classes: Sequence[str] | None = None,
                        class_names: Sequence[str] | None = None, resamples: int = DEFAULT_RESAMPLES,
                        seed: int = 0) -> dict:
    """segmentation_metrics from per-image (N, 4) counts (tp, fp, fn, tn: pixel_counts): what the
    folds of a cross-validation pool, each fold having saved its images' counts."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape[1] != 4 or len(counts) == 0:
        raise ValueError(f"counts must be (N, 4) with N >= 1, got shape {counts.shape}")
    n = len(counts)
    if resamples < MIN_RESAMPLES:
        raise ValueError(f"resamples must be >= {MIN_RESAMPLES}, got {resamples}")
    membership, names = _class_membership(classes, class_names, n)

    per_image = _rates(*counts.T)
    table = np.stack([per_image[name] for name in PER_IMAGE_METRICS], axis=1)  # (N, M)
    pooled = _rates(*counts.sum(axis=0))

    # weights[r, i]: how often resample r draws image i; weights @ table sums each resample.
    weights = _draw_counts(resample_indices(n, resamples, seed), n)
    means = weights @ table / n  # (R, M)
    pooled_counts = weights @ counts.astype(np.float64)  # (R, 4), exact: integers far below 2**53
    pooled_resampled = _rates(*pooled_counts.T)

    row: dict = {"n_images": int(n)}
    intervals = percentile_interval(means)  # (M, 2)
    for j, name in enumerate(PER_IMAGE_METRICS):
        row[name] = float(table[:, j].mean())
        row[f"{name}_ci95"] = intervals[j].tolist()
    for name in POOLED_METRICS:
        row[f"pooled_{name}"] = float(pooled[name])
    for name in POOLED_INTERVALS:
        row[f"pooled_{name}_ci95"] = percentile_interval(pooled_resampled[name]).tolist()

    if membership is not None:
        row.update(_per_class(per_image["dice"], per_image["iou"], membership, names, weights))

    dice = per_image["dice"]
    row["dice_median"] = float(np.median(dice))
    row["dice_per_image"] = dice.tolist()
    row["empty_predictions"] = int(np.count_nonzero(counts[:, 0] + counts[:, 1] == 0))
    return row


def pixel_counts(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-image confusion counts, int64 (N, 4): columns tp, fp, fn, tn."""
    pred, truth = check_masks(pred, truth)
    n = len(pred)
    pred = pred.reshape(n, -1)
    truth = truth.reshape(n, -1)
    tp = np.count_nonzero(pred & truth, axis=1)
    predicted = np.count_nonzero(pred, axis=1)
    true = np.count_nonzero(truth, axis=1)
    fp = predicted - tp
    fn = true - tp
    tn = pred.shape[1] - tp - fp - fn
    return np.stack([tp, fp, fn, tn], axis=1).astype(np.int64)


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image Dice and IoU, two float (N,) arrays; both masks empty gives 1 for both."""
    rates = _rates(*pixel_counts(pred, truth).T)
    return rates["dice"], rates["iou"]


def mask_agreement(pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Mean per-image IoU between two predictions of the same images (e.g. a deployed model vs eager).

    Symmetric in its arguments; an image where both predict nothing agrees fully (IoU 1).
    """
    _, iou = dice_iou(pred_a, pred_b)
    return float(iou.mean())


def check_masks(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (N, H, W) views or copies of the two mask stacks; ValueError naming the shapes otherwise."""
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"pred and truth masks differ in shape: pred {pred.shape}, truth {truth.shape}")
    if pred.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {pred.shape}; add a leading axis for one image")
    if pred.shape[0] == 0 or pred[0].size == 0:
        raise ValueError(f"no masks to score: pred and truth have shape {pred.shape}")
    return _as_bool(pred, "pred"), _as_bool(truth, "truth")


def _as_bool(masks: np.ndarray, name: str) -> np.ndarray:
    if masks.dtype == np.bool_:
        return masks
    # Anything but 0/1 is most likely probabilities or logits passed without thresholding.
    if not np.issubdtype(masks.dtype, np.number) or not np.all((masks == 0) | (masks == 1)):
        raise ValueError(f"{name} masks must be boolean or 0/1, got dtype {masks.dtype} with other values")
    return masks.astype(bool)


def _rates(tp, fp, fn, tn) -> dict[str, np.ndarray]:
    """Every metric from the counts; works elementwise on scalars, (N,) images or (R,) resamples.

    The empty-denominator values are those of the module docstring. Counts may be float (summed
    bootstrap counts); they hold integers, so the == 0 tests below are exact.
    """
    tp, fp, fn, tn = (np.asarray(c, dtype=np.float64) for c in (tp, fp, fn, tn))
    nothing_true = tp + fn == 0
    overlap = 2 * tp + fp + fn
    union = tp + fp + fn
    recall_if_no_truth = np.where(fp == 0, 1.0, 0.0)
    return {
        "dice": _ratio(2 * tp, overlap, 1.0),
        "iou": _ratio(tp, union, 1.0),
        "pixel_acc": _ratio(tp + tn, tp + fp + fn + tn, math.nan),
        "precision": _ratio(tp, tp + fp, np.where(nothing_true, 1.0, 0.0)),
        "recall": _ratio(tp, tp + fn, recall_if_no_truth),
        "fpr": _ratio(fp, fp + tn, 0.0),
        "fnr": _ratio(fn, fn + tp, 1.0 - recall_if_no_truth),
    }


def _ratio(num: np.ndarray, den: np.ndarray, empty) -> np.ndarray:
    """num / den elementwise, `empty` (scalar or array) where den is 0, without a warning."""
    shape = np.broadcast(num, den).shape
    out = np.array(np.broadcast_to(empty, shape), dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out if out.ndim else out[()]


def _draw_counts(indices: np.ndarray, n: int) -> np.ndarray:
    """(R, N) float matrix: how many times each resample drew each image (rows sum to N)."""
    resamples = indices.shape[0]
    offset = np.arange(resamples, dtype=np.int64)[:, None] * n
    counts = np.bincount((offset + indices).ravel(), minlength=resamples * n)
    return counts.reshape(resamples, n).astype(np.float64)


def _class_membership(
    classes: Sequence[str] | None, class_names: Sequence[str] | None, n: int
) -> tuple[np.ndarray | None, list[str]]:
    """One-hot (N, K) float membership of each image in each class, and the K names in key order."""
    if classes is None:
        if class_names is not None:
            raise ValueError("class_names given without classes: pass each image's class as classes")
        return None, []
    classes = [str(c) for c in classes]
    if len(classes) != n:
        raise ValueError(f"classes has {len(classes)} entries but there are {n} masks")
    names = sorted(set(classes)) if class_names is None else [str(c) for c in class_names]
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {names}")
    position = {name: k for k, name in enumerate(names)}
    unknown = sorted(set(classes) - set(position))
    if unknown:
        raise ValueError(f"classes {unknown} are not among class_names {names}")
    index = np.array([position[c] for c in classes], dtype=np.int64)
    return np.eye(len(names), dtype=np.float64)[index], names


def _per_class(
    dice: np.ndarray, iou: np.ndarray, membership: np.ndarray, names: list[str], weights: np.ndarray
) -> dict:
    """dice_<c>, dice_<c>_ci95, iou_<c> and n_<c> per class; NaN for a class without images.

    The interval reuses the split's resamples, as the classification intervals do, so the number of
    images of a class varies between resamples as it would between test sets; a resample that
    draws no image of the class is left out of its interval (NaN, ignored by percentile_interval).
    """
    n_class = membership.sum(axis=0)  # (K,)
    dice_mean = _ratio(dice @ membership, n_class, math.nan)
    iou_mean = _ratio(iou @ membership, n_class, math.nan)
    resampled = _ratio(weights @ (dice[:, None] * membership), weights @ membership, math.nan)  # (R, K)
    intervals = percentile_interval(resampled)  # (K, 2)
    out: dict = {}
    for k, name in enumerate(names):
        out[f"dice_{name}"] = float(dice_mean[k])
        out[f"dice_{name}_ci95"] = intervals[k].tolist()
        out[f"iou_{name}"] = float(iou_mean[k])
        out[f"n_{name}"] = int(n_class[k])
    return out
