"""Paired comparison of two classifiers on the same images: the exact McNemar test.

Only the images where exactly one of the two is right carry information: b where the first is
right and the second wrong, c the reverse. Under "equally accurate" each such image is a fair
coin, so b ~ Binomial(b + c, 1/2); the two-sided p-value doubles the smaller tail. The exact
form is used at every size: it needs no continuity correction and is cheap for test splits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SIGNIFICANCE_LEVEL = 0.05


@dataclass(frozen=True)
class McNemar:
    first_only: int  # b: first right, second wrong
    second_only: int  # c: first wrong, second right
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < SIGNIFICANCE_LEVEL


def exact_mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact p-value for b and c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2.0 ** n
    return min(1.0, 2.0 * tail)


def mcnemar(first_correct, second_correct) -> McNemar:
    """Compare two per-image correctness vectors over the same images in the same order."""
    first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    if first.shape != second.shape:
        raise ValueError(f"paired test needs the same images: {first.shape} vs {second.shape}")
    b = int((first & ~second).sum())
    c = int((~first & second).sum())
    return McNemar(b, c, exact_mcnemar_p(b, c))
