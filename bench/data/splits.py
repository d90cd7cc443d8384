"""Seeded, stratified splits: the same inputs in the same order always give the same split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split positions 0..len(labels)-1 into (kept, held_out), holding out `fraction` of each class.

    Every class with at least two members keeps at least one and holds out at least one, so
    neither side loses a class. Positions come back sorted, so callers keep their file order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be between 0 and 1, got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    kept: list[int] = []
    held: list[int] = []
    for label in np.unique(labels):  # sorted, so the draw order does not depend on file order
        members = np.flatnonzero(labels == label)
        shuffled = rng.permutation(members)
        n_held = int(round(fraction * len(members)))
        if len(members) >= 2:
            n_held = min(max(n_held, 1), len(members) - 1)
        held.extend(shuffled[:n_held].tolist())
        kept.extend(shuffled[n_held:].tolist())
    return sorted(kept), sorted(held)
