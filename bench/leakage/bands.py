"""Similarity bands of a test image's nearest training image, shared by the audit and the runner.

A test image whose nearest training image (any orientation) is at least 0.99 similar is, to the
eye, the same picture; 0.90-0.99 are mostly neighbouring slices of the same patient. The
leakage curve reports accuracy per band so a reader sees where a model stops beating memory.
"""

from __future__ import annotations

import math

import numpy as np

# (label, low, high): low <= similarity < high, highest band first.
BANDS = ((">= 0.99", 0.99, math.inf), ("0.95-0.99", 0.95, 0.99), ("0.90-0.95", 0.90, 0.95),
         ("< 0.90", -math.inf, 0.90))
# Column-name keys of the bands (result rows are flat dicts with stable names).
BAND_KEYS = ("ge0.99", "0.95-0.99", "0.90-0.95", "lt0.90")


def band_masks(similarity: np.ndarray) -> list[np.ndarray]:
    """One boolean mask per band, in BANDS order; every image falls in exactly one."""
    similarity = np.asarray(similarity, dtype=np.float64)
    return [(similarity >= low) & (similarity < high) for _, low, high in BANDS]


def band_columns(correct: np.ndarray, similarity: np.ndarray) -> dict:
    """`leak_n_<band>` and `leak_acc_<band>` (NaN for an empty band) of one prediction pass."""
    correct = np.asarray(correct, dtype=bool)
    columns: dict = {}
    for key, mask in zip(BAND_KEYS, band_masks(similarity)):
        n = int(mask.sum())
        columns[f"leak_n_{key}"] = n
        columns[f"leak_acc_{key}"] = float(correct[mask].mean()) if n else math.nan
    return columns
