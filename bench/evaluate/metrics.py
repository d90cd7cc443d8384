"""Classification metrics of one prediction pass, as a flat, JSON-ready result dict.

Conventions (documented once, used everywhere):
- Confusion matrix rows are the true class, columns the predicted class.
- A ratio whose denominator is zero is 0, as scikit-learn's `zero_division=0`: a class never
  predicted has precision 0 and (unless it is also absent from the labels) F1 0. The one
  exception is a bootstrap resample missing a class: its sensitivity there is NaN, not 0, so
  that the interval describes resamples where sensitivity is defined.
- F1 is 2TP / (2TP + FP + FN), equal to the harmonic mean of precision and sensitivity where
  both are defined, and it needs no special case when they are not.
- Weighted averages weight each class by its support (its number of true images), for
  specificity too, so that every weighted_* column means the same thing.
- ROC-AUC is one-vs-rest on the class probability; a class with no positive or no negative
  image has NaN AUC and is left out of macro_auc.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from bench.evaluate.bootstrap import DEFAULT_RESAMPLES, percentile_interval, resample_indices, resampled_confusions

# The default of `no_tumor`: the Kaggle four-class set's no-tumour class. Callers that pass those four
# names (tests, notebooks written before label sets were declared) keep their tumour-missed rate
# without naming it; a label set without that name gets NaN unless its own no-tumour class is passed.
KAGGLE_NO_TUMOR = "notumor"
ECE_BINS = 15
# Below this the 2.5 % tail rests on a couple of dozen resamples and the interval wobbles.
MIN_RESAMPLES = DEFAULT_RESAMPLES
# Softmax rows sum to 1; a looser tolerance still catches logits passed by mistake.
PROB_SUM_TOL = 1e-2


def classification_metrics(
    labels,
    probs,
    class_names: Sequence[str],
    *,
    no_tumor: str | None = KAGGLE_NO_TUMOR,
    loss: float | None = None,
    bootstrap_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict:
    """All metrics of one split as a flat dict of plain floats, ints and lists (unprefixed keys).

    labels: int array (N,) of true class indices; probs: float array (N, K) of softmax
    probabilities; class_names: the K names, in index order; no_tumor: the label set's no-tumour
    class (`LabelSet.no_tumor`), None when it has none. The runner adds the split prefix.
    """
    labels, probs = check_predictions(labels, probs, class_names)
    if bootstrap_resamples < MIN_RESAMPLES:
        raise ValueError(f"bootstrap_resamples must be >= {MIN_RESAMPLES}, got {bootstrap_resamples}")
    k = len(class_names)
    preds = probs.argmax(axis=1)
    confusion = confusion_matrix(labels, preds, k)
    rates = per_class_rates(confusion)
    support = confusion.sum(axis=1) / len(labels)
    aucs = one_vs_rest_auc(labels, probs)

    row: dict = {"n": int(len(labels)), "acc": float(accuracy(confusion))}
    row["macro_f1"] = float(rates["f1"].mean())
    row["weighted_f1"] = float(rates["f1"] @ support)
    for rate in ("precision", "sensitivity", "specificity"):
        row[f"macro_{rate}"] = float(rates[rate].mean())
        row[f"weighted_{rate}"] = float(rates[rate] @ support)
    for i, name in enumerate(class_names):
        for rate in ("precision", "sensitivity", "specificity", "f1"):
            row[f"{rate}_{name}"] = float(rates[rate][i])
        row[f"auc_{name}"] = float(aucs[i])
    finite_aucs = aucs[np.isfinite(aucs)]
    row["macro_auc"] = float(finite_aucs.mean()) if finite_aucs.size else math.nan
    row["ece"] = expected_calibration_error(labels, probs)
    row["mean_confidence"] = float(probs.max(axis=1).mean())
    row["tumor_missed_rate"] = tumor_missed_rate(labels, preds, class_names, no_tumor)
    if loss is not None:
        row["loss"] = float(loss)
    row.update(bootstrap_intervals(labels, preds, class_names, bootstrap_resamples, seed))
    row["confusion"] = confusion.astype(int).tolist()
    return row


def check_predictions(labels, probs, class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Validated copies of labels (int64, (N,)) and probs (float64, (N, K)); ValueError otherwise."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got shape {labels.shape}")
    if probs.ndim != 2:
        raise ValueError(f"probs must be 2-D (N, K), got shape {probs.shape}")
    if len(labels) != len(probs):
        raise ValueError(f"labels and probs differ in length: {len(labels)} labels, probs shape {probs.shape}")
    if len(labels) == 0:
        raise ValueError("no predictions: labels and probs are empty")
    k = len(class_names)
    if probs.shape[1] != k:
        raise ValueError(f"probs has {probs.shape[1]} columns but there are {k} class_names {list(class_names)}")
    if len(set(class_names)) != k:
        raise ValueError(f"class_names must be unique, got {list(class_names)}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.number) and np.all(labels == np.round(labels))):
            raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = labels[(labels < 0) | (labels >= k)]
    if bad.size:
        raise ValueError(f"label {bad[0]} out of range [0, {k - 1}] for {k} classes")
    if not np.all(np.isfinite(probs)):
        raise ValueError("probs contains NaN or infinite values")
    sums = probs.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > PROB_SUM_TOL or probs.min() < 0:
        raise ValueError(f"probs must be softmax probabilities (rows >= 0, summing to 1); row {worst} sums to {sums[worst]:.4g}")
    return labels, probs


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) int counts, rows = true class, columns = predicted class."""
    flat = labels * n_classes + preds
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(confusion: np.ndarray) -> np.ndarray:
    """Share of correct predictions; works on one (K, K) matrix or a stack (..., K, K)."""
    correct = np.trace(confusion, axis1=-2, axis2=-1)
    return correct / confusion.sum(axis=(-2, -1))


def per_class_rates(confusion: np.ndarray, absent_sensitivity: float = 0.0) -> dict[str, np.ndarray]:
    """Precision, sensitivity, specificity and F1 of each class, shape (..., K).

    Works on one (K, K) matrix or a stack (R, K, K) of bootstrap matrices. Zero denominators
    give 0 (zero_division=0), except sensitivity of a class with no true images, which gives
    `absent_sensitivity` (the bootstrap passes NaN).
    """
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
    true_count = confusion.sum(axis=-1)
    pred_count = confusion.sum(axis=-2)
    total = confusion.sum(axis=(-2, -1))[..., None]
    fp = pred_count - tp
    fn = true_count - tp
    tn = total - tp - fp - fn
    return {
        "precision": _ratio(tp, pred_count, 0.0),
        "sensitivity": _ratio(tp, true_count, absent_sensitivity),
        "specificity": _ratio(tn, tn + fp, 0.0),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, 0.0),
    }


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den elementwise, `empty` where den is 0, without a divide-by-zero warning."""
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    return np.divide(num, den, out=out, where=den > 0)


def one_vs_rest_auc(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """ROC-AUC of each class against the rest, (K,); NaN for a class with no positive or negative.

    Uses the Mann-Whitney form: AUC is the chance that a random positive scores above a
    random negative, ties counting one half, which average ranks give exactly.
    """
    aucs = np.full(probs.shape[1], np.nan)
    for k in range(probs.shape[1]):
        positive = labels == k
        n_pos = int(positive.sum())
        n_neg = len(labels) - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = _average_ranks(probs[:, k])
        aucs[k] = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return aucs


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks of scores; tied scores share the mean of the ranks they span."""
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    return (last_rank - (counts - 1) / 2.0)[group.ravel()]


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Top-1 ECE: sum over equal-width confidence bins of (bin share) * |accuracy - confidence|.

    Bins are (lo, hi] so a confidence of exactly 0.8 falls in the bin ending at 0.8;
    with softmax over K classes the top-1 confidence is never below 1/K anyway.
    """
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    bins = np.digitize(confidence, inner_edges, right=True)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    # |sum of (correct - confidence)| / N per bin = share * |accuracy - mean confidence|.
    return float(np.abs(gap[count > 0]).sum() / len(labels))


def tumor_missed_rate(labels: np.ndarray, preds: np.ndarray, class_names: Sequence[str],
                      no_tumor: str | None = KAGGLE_NO_TUMOR) -> float:
    """Share of tumor images (true class is not `no_tumor`) predicted `no_tumor`.

    NaN when the label set has no no-tumour class (None, or a name not among class_names: a
    tumour-types-only set such as figshare's), or when the split holds no tumor image.
    """
    if no_tumor is None or no_tumor not in class_names:
        return math.nan
    normal = list(class_names).index(no_tumor)
    tumor = labels != normal
    if not tumor.any():
        return math.nan
    return float(np.mean(preds[tumor] == normal))


def bootstrap_intervals(
    labels: np.ndarray, preds: np.ndarray, class_names: Sequence[str], resamples: int, seed: int
) -> dict:
    """95 % percentile intervals of acc, macro_f1 and each class's sensitivity, as [low, high]."""
    indices = resample_indices(len(labels), resamples, seed)
    confusions = resampled_confusions(labels, preds, len(class_names), indices)
    rates = per_class_rates(confusions, absent_sensitivity=np.nan)
    out = {
        "acc_ci95": percentile_interval(accuracy(confusions)).tolist(),
        "macro_f1_ci95": percentile_interval(rates["f1"].mean(axis=-1)).tolist(),
    }
    sensitivity = percentile_interval(rates["sensitivity"])
    for i, name in enumerate(class_names):
        out[f"sensitivity_{name}_ci95"] = sensitivity[i].tolist()
    return out
