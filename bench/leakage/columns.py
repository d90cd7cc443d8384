"""The leakage columns of one entry's test predictions: accuracy per similarity band, and the
clean (leak-free) test split's metrics next to the official ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.evaluate.subset_metrics import present_class_metrics
from bench.leakage.bands import band_columns
from bench.leakage.index import LeakageIndex


def leakage_columns(labels: np.ndarray, probs: np.ndarray, rels: list[str], leakage: LeakageIndex,
                    class_names: Sequence[str] | None = None) -> dict:
    """`leak_*` band columns and `clean_*` columns (acc with interval, balanced accuracy, macro-F1
    over the classes present, per-class support and sensitivity).

    Labels index the label set the leakage index was built with (`leakage.class_names`, the
    dataset's); a caller passing `class_names` states which set it means, and another set is a
    mistake caught here rather than columns named after the wrong classes.
    """
    if class_names is not None and tuple(class_names) != leakage.class_names:
        raise ValueError(f"predictions over {list(class_names)} scored with a leakage index of "
                         f"{list(leakage.class_names)}")
    labels = np.asarray(labels, np.int64)
    preds = np.asarray(probs).argmax(axis=1)
    columns = band_columns(preds == labels, leakage.similarities(rels))
    clean = leakage.clean_mask(rels)
    scores = present_class_metrics(labels[clean], preds[clean], leakage.class_names)
    columns |= {f"clean_{key}": value for key, value in scores.items()}
    columns["clean_threshold"] = leakage.threshold
    return columns
