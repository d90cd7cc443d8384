"""McNemar's exact test, checked against a case computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bench.evaluate.mcnemar import exact_mcnemar_p, mcnemar


def test_exact_p_value_by_hand():
    # b = 10, c = 2: P(X <= 2) for X ~ Binomial(12, 1/2) is (1 + 12 + 66) / 4096; two-sided doubles it.
    assert exact_mcnemar_p(10, 2) == pytest.approx(158 / 4096)
    assert exact_mcnemar_p(2, 10) == exact_mcnemar_p(10, 2)
    assert exact_mcnemar_p(3, 3) == 1.0 and exact_mcnemar_p(0, 0) == 1.0
    assert exact_mcnemar_p(1, 0) == 1.0  # one discordant image proves nothing


def test_only_discordant_images_count():
    first = np.array([1] * 10 + [0] * 2 + [1] * 50 + [0] * 7, bool)
    second = np.array([0] * 10 + [1] * 2 + [1] * 50 + [0] * 7, bool)
    result = mcnemar(first, second)
    assert (result.first_only, result.second_only) == (10, 2)
    assert result.p_value == pytest.approx(158 / 4096) and result.significant
    assert not mcnemar(first[10:], second[10:]).significant


def test_unpaired_vectors_are_refused():
    with pytest.raises(ValueError, match="same images"):
        mcnemar(np.ones(3, bool), np.ones(4, bool))
