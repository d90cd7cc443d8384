"""The note a measurement leaves instead of a number: `n/a: <reason>` or `error: <Type>: <line>`.

`n/a` is an expected absence on this machine (no CUDA device, a package not installed): nothing to
fix here, the same run elsewhere fills it in. `error` is a failure: the thing should have run and did
not, and someone should look. Deployment modes write these notes and the leaderboard reads them, so
both sides take the words from here (this module imports nothing of brainbench).
"""

from __future__ import annotations

NA = "n/a"
ERROR = "error"
_NA_PREFIX, _ERROR_PREFIX = f"{NA}: ", f"{ERROR}: "


def first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0].strip() if lines else ""


def na_note(reason: object) -> str:
    """'n/a: no CUDA device'."""
    return f"{_NA_PREFIX}{first_line(reason)}"


def error_note(exc: BaseException, context: str = "") -> str:
    """'error: RuntimeError: exporter broke', or with a context 'error: <context>: RuntimeError: ...'.

    Only the message's first line: a table cell, not a traceback (that goes to the debug log)."""
    message = first_line(exc)
    described = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{_ERROR_PREFIX}{context}: {described}" if context else f"{_ERROR_PREFIX}{described}"


def note_status(note: object) -> str | None:
    """NA, ERROR, or None for a note that is neither (or no note)."""
    if not isinstance(note, str):
        return None
    if note.startswith(_ERROR_PREFIX):
        return ERROR
    if note.startswith(_NA_PREFIX):
        return NA
    return None


def note_reason(note: str) -> str:
    """The text after 'n/a: ' or 'error: '."""
    for prefix in (_NA_PREFIX, _ERROR_PREFIX):
        if note.startswith(prefix):
            return note[len(prefix):]
    return note
