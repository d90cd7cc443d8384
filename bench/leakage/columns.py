"""The leakage columns of one entry's test predictions: accuracy per similarity band, and the
clean (leak-free) test split's metrics next to the official ones."""

from __future__ import annotations

import numpy as np

from bench.data.labels import CLASS_NAMES
from bench.evaluate.subset_metrics import present_class_metrics
from bench.leakage.bands import band_columns
from bench.leakage.index import LeakageIndex


def leakage_columns(labels: np.ndarray, probs: np.ndarray, rels: list[str], leakage: LeakageIndex) -> dict:
    """`leak_*` band columns and `clean_*` columns (acc with interval, balanced accuracy, macro-F1
    over the classes present, per-class support and sensitivity)."""
    labels = np.asarray(labels, np.int64)
    preds = np.asarray(probs).argmax(axis=1)
    columns = band_columns(preds == labels, leakage.similarities(rels))
    clean = leakage.clean_mask(rels)
    scores = present_class_metrics(labels[clean], preds[clean], CLASS_NAMES)
    columns |= {f"clean_{key}": value for key, value in scores.items()}
    columns["clean_threshold"] = leakage.threshold
    return columns
