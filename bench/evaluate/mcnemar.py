"""Paired comparison of two classifiers on the same images: the exact McNemar test.

Only the images where exactly one of the two is right carry information: b where the first is
right and the second wrong, c the reverse. Under "equally accurate" each such image is a fair
coin, so b ~ Binomial(b + c, 1/2): scipy's exact binomial test (at 1/2 its two-sided p-value is
twice the smaller tail). The exact form is used at every size: it needs no continuity correction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

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
    """Two-sided exact p-value for b and c discordant pairs: a binomial test of b out of b + c at 1/2."""
    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


def mcnemar(first_correct, second_correct) -> McNemar:
    """Compare two per-image correctness vectors over the same images in the same order."""
    first, second = np.asarray(first_correct, bool), np.asarray(second_correct, bool)
    if first.shape != second.shape:
        raise ValueError(f"paired test needs the same images: {first.shape} vs {second.shape}")
    b = int((first & ~second).sum())
    c = int((~first & second).sum())
    return McNemar(b, c, exact_mcnemar_p(b, c))
