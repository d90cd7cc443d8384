"""Metrics of an image set that may lack some classes: the clean test split, an external dataset.

Macro averages over all four classes would count an absent class as a sensitivity of 0 and
punish every model for the dataset's make-up. Here they average over the classes present
(macro sensitivity is then balanced accuracy), and the classes present are listed in the result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bench.evaluate.bootstrap import (DEFAULT_RESAMPLES, percentile_interval, resample_indices,
                                      resampled_confusions)
from bench.evaluate.metrics import accuracy, confusion_matrix, per_class_rates


def present_class_metrics(labels: np.ndarray, preds: np.ndarray, class_names: Sequence[str], *,
                          resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict:
    """Accuracy and macro metrics over the classes present, with bootstrap 95 % intervals.

    labels and preds are class indices into class_names. An empty set gives n = 0 and NaNs.
    """
    labels, preds = np.asarray(labels, np.int64), np.asarray(preds, np.int64)
    k = len(class_names)
    if len(labels) == 0:
        return {"n": 0, "acc": math.nan, "acc_ci95": [math.nan, math.nan], "balanced_acc": math.nan,
                "balanced_acc_ci95": [math.nan, math.nan], "macro_f1": math.nan, "classes": []}
    confusion = confusion_matrix(labels, preds, k)
    present = confusion.sum(axis=1) > 0
    rates = per_class_rates(confusion)
    row: dict = {"n": int(len(labels)), "acc": float(accuracy(confusion)),
                 "balanced_acc": float(rates["sensitivity"][present].mean()),
                 "macro_f1": float(rates["f1"][present].mean()),
                 "classes": [name for name, here in zip(class_names, present) if here]}
    for i, name in enumerate(class_names):
        row[f"support_{name}"] = int(confusion[i].sum())
        if present[i]:
            row[f"sensitivity_{name}"] = float(rates["sensitivity"][i])
    confusions = resampled_confusions(labels, preds, k, resample_indices(len(labels), resamples, seed))
    resampled = per_class_rates(confusions, absent_sensitivity=np.nan)["sensitivity"][:, present]
    row["acc_ci95"] = percentile_interval(accuracy(confusions)).tolist()
    with np.errstate(invalid="ignore"):
        balanced = np.nanmean(resampled, axis=1) if resampled.size else np.full(len(confusions), np.nan)
    row["balanced_acc_ci95"] = percentile_interval(balanced).tolist()
    return row
