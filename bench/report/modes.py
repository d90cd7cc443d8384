"""Which latency modes a set of rows measured, found from the keys so new modes need no code.

A mode <m> shows up as `latency_ms_b1_<m>` (median), `latency_ms_b1_<m>_p90`,
`throughput_ips_b64_<m>`, `throughput_batch_<m>` and, when it has no number, `latency_note_<m>`:
`n/a: <reason>` where it cannot run on that machine, `error: <Type>: <first line>` where it failed
(bench/mode_notes.py). The tables keep the two apart: an error is something to fix, n/a is not.
"""

from __future__ import annotations

from bench.mode_notes import ERROR, NA, note_status
from bench.report.fmt import missing
from bench.report.rows import metric_prefix

# Known modes in the order a reader expects (slowest to most specialised); others follow sorted.
KNOWN_ORDER = ("eager", "torchscript", "compile", "onnxruntime", "tensorrt")
_MODE_PREFIXES = ("latency_ms_b1_", "throughput_ips_b64_", "latency_note_")
# Statistics stored beside a mode's median: latency_ms_b1_eager_p90 and _std belong to "eager".
_STAT_SUFFIXES = ("_p90", "_std")


def latency_modes(rows: list[dict]) -> list[str]:
    """Every mode any row mentions, known ones first in KNOWN_ORDER."""
    found = set()
    for row in rows:
        for key in row:
            mode = _mode_of(key)
            if mode:
                found.add(mode)
    known = [m for m in KNOWN_ORDER if m in found]
    return known + sorted(found - set(known))


def plottable_modes(rows: list[dict]) -> list[str]:
    """Modes with at least one ok row that has both a latency and an accuracy (test, or pooled
    out-of-fold for a cross-validation summary)."""
    return [mode for mode in latency_modes(rows)
            if any(row.get("status") == "ok" and not missing(row.get(f"latency_ms_b1_{mode}"))
                   and not missing(row.get(f"{metric_prefix(row)}acc")) for row in rows)]


def mode_status(row: dict, mode: str) -> str | None:
    """'ok' (it has a batch-1 latency), NA (cannot run there), ERROR (failed), or None (the row
    does not mention the mode)."""
    if not missing(row.get(f"latency_ms_b1_{mode}")):
        return "ok"
    return note_status(row.get(f"latency_note_{mode}"))


def mode_note(row: dict, mode: str) -> str:
    """The text shown where a mode's number would be: its note, an error marked in bold so that it
    does not read like the n/a notes around it."""
    note = row.get(f"latency_note_{mode}")
    if note_status(note) == ERROR:
        return f"**{note}**"
    return note or NA


def _mode_of(key: str) -> str | None:
    for prefix in _MODE_PREFIXES:
        if key.startswith(prefix):
            mode = key[len(prefix):]
            # latency_ms_b1_eager_p90 is the p90 of mode "eager", not a mode "eager_p90".
            if prefix == "latency_ms_b1_" and mode.endswith(_STAT_SUFFIXES):
                return None
            return mode or None
    return None


def tradeoff_file_names(rows: list[dict], main_mode: str = "eager") -> dict[str, str]:
    """Plot file of each plottable mode: the main mode keeps the plain name, others get a suffix."""
    return {mode: "accuracy_vs_latency.png" if mode == main_mode else f"accuracy_vs_latency_{mode}.png"
            for mode in plottable_modes(rows)}
