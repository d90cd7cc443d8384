"""What every deployment mode hands back once it is built: a forward function and its costs.

A mode is a function `prepare(model, example, device, max_batch) -> Prepared`: `example` is a
float32 (1, C, H, W) input on `device`, `max_batch` the largest batch it will be given. It raises
ModeUnavailable for an expected absence and anything else for a real failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


class ModeUnavailable(Exception):
    """This mode cannot run here for a known, expected reason (no CUDA, package missing).

    Its message becomes the row's note verbatim (`n/a: no CUDA device`), unlike unexpected errors,
    whose note also names the exception type.
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
    """

    forward: Callable[[Any], torch.Tensor]
    convert: Callable[[torch.Tensor], Any] = _identity
    compile_s: float | None = None
    extra: dict = field(default_factory=dict)  # mode-specific columns (provider, warning, engines)
    release: Callable[[], None] | None = None  # frees what the mode holds beyond `forward` (caches)
