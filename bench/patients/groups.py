"""Groups for the images no reference slice matched: near-duplicate clusters, at a chosen threshold.

Without a patient id, the best stand-in for "same patient" is "linked by a chain of near-identical
pictures" (bench/leakage/groups.py: same bytes, or similarity >= t in any orientation, closed under
transitivity). The threshold t trades two failures: too high, and neighbouring slices of one
patient are left apart (on both sides of a split); too low, and chains of merely similar brains
merge different people into one giant group (at 0.90 a quarter of the Kaggle notumor images).

Choice: the candidates run down from 0.99 to 0.90 in steps of 0.01 (below 0.90 a test image's
nearest training image is no longer a neighbouring slice: bench/leakage/bands.py). Lowering t
adds neighbouring slices to their groups a few at a time; a collapse shows as the largest group
more than doubling in one step and outgrowing any real patient (the most images recovered for one
reference patient). The threshold is the lowest candidate before the first collapse.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.audit.match import nearest
from bench.leakage.groups import duplicate_groups

CANDIDATES = tuple(round(0.99 - 0.01 * k, 2) for k in range(10))  # 0.99, 0.98, ..., 0.90
GROWTH_LIMIT = 2.0  # the largest group more than doubling in one 0.01 step is groups merging


@dataclass(frozen=True)
class SweepStep:
    threshold: float
    n_groups: int
    n_singletons: int
    largest: int
    largest_classes: dict[str, int]  # class -> images of the largest group
    collapses: bool  # the largest group more than doubled since the previous step, beyond any patient


@dataclass(frozen=True)
class Grouping:
    threshold: float
    group: list[int]  # one per image, numbered from 1 by size: group 1 is the largest
    sweep: tuple[SweepStep, ...]
    reason: str


def numbered_by_size(components: np.ndarray) -> list[int]:
    """Component labels renumbered 1, 2, ... from the largest group (ties: first member first)."""
    sizes = np.bincount(components)
    first = np.full(len(sizes), len(components))
    np.minimum.at(first, components, np.arange(len(components)))
    order = sorted(range(len(sizes)), key=lambda g: (-sizes[g], first[g]))
    number = {g: k + 1 for k, g in enumerate(order)}
    return [number[g] for g in components.tolist()]


def _step(threshold: float, groups: list[int], labels: Sequence[str], previous: SweepStep | None,
          largest_patient: int) -> SweepStep:
    sizes = Counter(groups)
    largest = sizes[1]
    collapses = (previous is not None and largest > GROWTH_LIMIT * previous.largest and largest > largest_patient)
    mix = Counter(label for label, g in zip(labels, groups) if g == 1)
    return SweepStep(threshold, len(sizes), sum(1 for n in sizes.values() if n == 1), largest, dict(mix), collapses)


def group_unmatched(pixels: np.ndarray, sha256: list[str], labels: Sequence[str], largest_patient: int,
                    candidates: Sequence[float] = CANDIDATES) -> Grouping:
    """Near-duplicate groups of these images at the threshold the sweep chooses; `labels`: each
    image's class name; `largest_patient`: the most images of one recovered patient."""
    if len(pixels) == 0:
        return Grouping(candidates[0], [], (), "every image matched a reference slice: nothing to group")
    sweep: list[SweepStep] = []
    grouped: dict[float, list[int]] = {}
    for threshold in candidates:
        grouped[threshold] = numbered_by_size(duplicate_groups(pixels, sha256, threshold))
        sweep.append(_step(threshold, grouped[threshold], labels, sweep[-1] if sweep else None, largest_patient))
    collapse = next((k for k, step in enumerate(sweep) if step.collapses), None)
    if collapse is None:
        chosen = sweep[-1]
        reason = (f"the largest group never more than doubled in one step down to {chosen.threshold}, the floor "
                  f"(largest {chosen.largest} images)")
    else:
        chosen, broke = sweep[collapse - 1], sweep[collapse]
        reason = (f"at {broke.threshold} the largest group grew from {chosen.largest} to {broke.largest} images "
                  f"in one step, more than any recovered patient has ({largest_patient}): groups of different "
                  f"people chain together there, so {chosen.threshold} is the lowest threshold before the collapse")
    return Grouping(chosen.threshold, grouped[chosen.threshold], tuple(sweep), reason)


def copies_of_matched(unmatched_pixels: np.ndarray, matched_pixels: np.ndarray, threshold: float) -> np.ndarray:
    """For each image no reference slice matched: the position of the matched image it is a copy of
    (similarity >= threshold, any orientation), or -1. The reference matching can miss a copy that
    a re-encoding moved below its threshold; that copy is still its patient's slice. (Measured on
    the Kaggle set: none at the audit's 0.99, nor at 0.95; at 0.93 a chain pulls 109 notumor images
    into a glioma family, which is why the audit's copy threshold decides, not the grouping's.)"""
    found = nearest(unmatched_pixels, matched_pixels)
    return np.where(found.similarity >= threshold, found.index, -1)
