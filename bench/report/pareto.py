"""The Pareto front of (latency, accuracy) points: the entries no other entry beats on both."""

from __future__ import annotations

import math
from typing import Sequence


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """a is at least as fast and as accurate as b, and strictly better in one of the two."""
    (lat_a, acc_a), (lat_b, acc_b) = a, b
    return lat_a <= lat_b and acc_a >= acc_b and (lat_a < lat_b or acc_a > acc_b)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated (latency, accuracy) points, fastest first.

    Lower latency and higher accuracy are better. Points with a NaN or None coordinate take no
    part. Exact duplicates do not dominate each other, so both stay. Quadratic, which is
    fine for a zoo of tens of entries and keeps the definition visible.
    """
    valid = [i for i, p in enumerate(points) if all(v is not None and not math.isnan(v) for v in p)]
    front = [i for i in valid if not any(dominates(points[j], points[i]) for j in valid if j != i)]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1], i))
