"""What every deployment mode hands back once it is built: a forward function and its costs.

A mode is a function `prepare(model, example, device, max_batch) -> Prepared`: `example` is a
float32 (1, C, H, W) input on `device`, `max_batch` the largest batch it will be given. It raises
ModeUnavailable for an expected absence (the row says `n/a: <reason>`) and anything else for a real
failure (`error: <Type>: <first line>`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch


class ModeUnavailable(Exception):
    """This mode cannot run here for a known, expected reason (no CUDA, package missing).

    Its message becomes the row's note verbatim (`n/a: no CUDA device`); any other exception is a
    failure, noted as `error: <Type>: <first line>` so the two never read alike.
    """


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass
class Prepared:
    """A built mode.

    `convert` turns a float32 NCHW tensor on the run's device into what `forward` takes (half
    precision, channels_last, a numpy array for ONNX Runtime on the CPU). It runs outside the
    timed region, as the input preparation of an eager run does, so every mode is timed on the
    model call alone. `forward` returns logits as a torch tensor of shape (N, K).

    A mode that builds one graph per input shape (torch.compile with static shapes) sets
    `compile_for`: the row calls it on every converted input before `forward` sees that shape (the
    agreement chunks, batch 1, the throughput batch), so compiling never lands in a timed call; it
    records the seconds per batch size in `compile_s_by_batch`. `timing_context` is entered around
    the timed calls; a compiled mode uses it to turn any recompilation there into an error.
    """

    forward: Callable[[Any], torch.Tensor]
    convert: Callable[[torch.Tensor], Any] = _identity
    compile_s: float | None = None
    extra: dict = field(default_factory=dict)  # mode-specific columns (provider, warning, engines)
    release: Callable[[], None] | None = None  # frees what the mode holds beyond `forward` (caches)
    compile_for: Callable[[Any], None] | None = None
    compile_s_by_batch: dict[int, float] = field(default_factory=dict)
    timing_context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
