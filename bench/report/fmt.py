"""How one value becomes text in a report: one place, so every table says "n/a" the same way."""

from __future__ import annotations

import math

NA = "n/a"


def missing(value) -> bool:
    """True for None and for NaN: both mean 'undefined here', never zero."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def pct(value, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage without the sign: 0.9431 -> '94.3'."""
    return NA if missing(value) else f"{100 * value:.{digits}f}"


def pct_interval(value, interval, digits: int = 1) -> str:
    """'94.3 % [93.0, 95.5]': a share with its 95 % interval, or just '94.3 %' without one."""
    if missing(value):
        return NA
    text = f"{pct(value, digits)} %"
    if _is_pair(interval):
        text += f" [{pct(interval[0], digits)}, {pct(interval[1], digits)}]"
    return text


def num(value, digits: int = 3) -> str:
    """A plain number with fixed decimals: F1, AUC, ECE, GMACs."""
    return NA if missing(value) else f"{value:.{digits}f}"


def sig(value, digits: int = 3) -> str:
    """A size-like number with `digits` significant figures: 11.2, 0.0488, 0.00934 (never '0.00')."""
    if missing(value):
        return NA
    if value == 0 or abs(value) >= 10 ** (digits - 1):
        return f"{value:.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-4 else f"{value:.1e}"


def count(value) -> str:
    return NA if missing(value) else f"{int(value)}"


def duration(seconds) -> str:
    """Seconds in the unit a reader thinks in: '42 s', '3.5 min', '1.2 h'."""
    if missing(seconds):
        return NA
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def cell(text: str) -> str:
    """Text safe inside a markdown table cell: one line, no bare pipe."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _is_pair(interval) -> bool:
    return (isinstance(interval, (list, tuple)) and len(interval) == 2
            and not any(missing(v) for v in interval))
