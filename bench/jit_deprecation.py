"""torch.jit's deprecation FutureWarnings once per process, with one brainbench note.

torch 2.x warns on every torch.jit.trace / trace_method / freeze / load that TorchScript is
deprecated. Python would show each once, but any `warnings.catch_warnings` block (pytest has one
per test, brainbench one per TorchScript build) resets that bookkeeping, so a suite of twenty
entries printed the same four warnings twenty times. Here each distinct deprecation message is
re-issued the first time only; every other warning (a TracerWarning about this model's control
flow, say) passes through unchanged, since it says something about the model in hand.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator

log = logging.getLogger(__name__)

# torch's wording: "`torch.jit.trace` is deprecated. Please switch to `torch.compile` or `torch.export`."
_DEPRECATION = re.compile(r"torch\.jit\.\w+`? is deprecated")
NOTE = ("TorchScript (torch.jit.trace, freeze, load) is deprecated upstream; brainbench still measures the "
        "torchscript mode and loads .pt/.ts external models while torch ships it")

_shown: set[str] = set()  # deprecation messages already shown in this process


def is_jit_deprecation(warning: warnings.WarningMessage) -> bool:
    return issubclass(warning.category, FutureWarning) and bool(_DEPRECATION.search(str(warning.message)))


@contextlib.contextmanager
def jit_deprecations_once() -> Iterator[list[str]]:
    """Run torch.jit calls inside; yields a list that receives the first line of every warning
    they raised (for a row's note), in order, whether or not it is shown again."""
    messages: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
    finally:  # a failing trace still shows what it warned about
        messages += [_first_line(w.message) for w in caught]
        _reissue(caught)


def _first_line(message: object) -> str:
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""


def _reissue(caught: list[warnings.WarningMessage]) -> None:
    # Outside the catch_warnings block, so the user's own filters decide what is printed.
    for w in caught:
        if is_jit_deprecation(w):
            text = str(w.message)
            if text in _shown:
                continue
            if not _shown:
                log.info(NOTE)
            _shown.add(text)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
