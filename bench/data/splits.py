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


def stratified_group_split(labels: Sequence[int], groups: Sequence[int], fraction: float,
                           seed: int) -> tuple[list[int], list[int]]:
    """Like stratified_split, but whole groups go to one side: duplicates of one picture (a
    group) never sit on both sides of the split, so the held-out side measures generalization.

    A group counts for the class of its first member; groups are held out in seeded random
    order until the class's held-out share reaches `fraction`. A class with two or more groups
    keeps at least one and holds out at least one.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"split fraction must be between 0 and 1, got {fraction}")
    labels, groups = np.asarray(labels), np.asarray(groups)
    if labels.shape != groups.shape:
        raise ValueError(f"labels and groups differ in length: {labels.shape} vs {groups.shape}")
    rng = np.random.default_rng(seed)
    group_ids, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    group_label = labels[first]
    order = np.argsort(inverse, kind="stable")  # positions grouped, in file order within a group
    bounds = np.cumsum(np.bincount(inverse))
    members = dict(zip(group_ids.tolist(), np.split(order, bounds[:-1])))
    held: list[int] = []
    for label in np.unique(labels):
        class_groups = rng.permutation(group_ids[group_label == label])
        target = fraction * sum(len(members[g]) for g in class_groups.tolist())
        taken = 0
        for g in class_groups[:-1].tolist():  # the last group always stays on the training side
            if taken > 0 and taken >= target:
                break
            held.extend(members[g].tolist())
            taken += len(members[g])
    held_set = set(held)
    kept = [i for i in range(len(labels)) if i not in held_set]
    return kept, sorted(held)
