"""Modes that stay inside PyTorch: eager variants, TorchScript, torch.compile."""

from __future__ import annotations

import copy
import time
import warnings

import torch
from torch import nn

from bench.deploy.prepared import ModeUnavailable, Prepared
from bench.evaluate.timing import _synchronize


def require_cuda(device: torch.device) -> None:
    if device.type != "cuda":
        raise ModeUnavailable("no CUDA device")


def prepare_eager(model: nn.Module, example: torch.Tensor, device: torch.device,
                  max_batch: int) -> Prepared:
    return Prepared(forward=model)


def _autocast_forward(model: nn.Module, device: torch.device, dtype: torch.dtype):
    def forward(x: torch.Tensor) -> torch.Tensor:
        # The autocast context is entered inside the timed call: it is part of what a user pays.
        with torch.autocast(device.type, dtype=dtype):
            return model(x)
    return forward


def prepare_eager_fp16(model: nn.Module, example: torch.Tensor, device: torch.device,
                       max_batch: int) -> Prepared:
    require_cuda(device)
    return Prepared(forward=_autocast_forward(model, device, torch.float16))


def prepare_eager_bf16(model: nn.Module, example: torch.Tensor, device: torch.device,
                       max_batch: int) -> Prepared:
    require_cuda(device)
    if not torch.cuda.is_bf16_supported():
        raise ModeUnavailable("bfloat16 not supported on this GPU")
    return Prepared(forward=_autocast_forward(model, device, torch.bfloat16))


def _to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def prepare_eager_cl(model: nn.Module, example: torch.Tensor, device: torch.device,
                     max_batch: int) -> Prepared:
    require_cuda(device)
    # A copy: converting the caller's model in place would change every later mode's input.
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    return Prepared(forward=cl_model, convert=_to_channels_last)


def _first_line(message: object) -> str:
    text = str(message).strip()
    return text.splitlines()[0] if text else ""


def prepare_torchscript(model: nn.Module, example: torch.Tensor, device: torch.device,
                        max_batch: int) -> Prepared:
    """torch.jit.trace, then torch.jit.freeze (weights folded in as constants).

    TorchScript is deprecated in recent torch. Its warnings are recorded to name the first one in
    the row (a reader should know this mode is on its way out), then re-issued unchanged: we do
    not silence them.
    """
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frozen = torch.jit.freeze(torch.jit.trace(model, example))
    compile_s = time.perf_counter() - started
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    extra = {"deploy_warning_torchscript": _first_line(caught[0].message) if caught else None}
    return Prepared(forward=frozen, compile_s=compile_s, extra=extra)


def _prepare_compiled(model: nn.Module, example: torch.Tensor, device: torch.device,
                      mode: str | None) -> Prepared:
    """torch.compile is lazy: the first call traces and compiles, so its time is the compile time.

    Dynamo's caches are reset first: they are keyed on the forward's code, and a second
    torch.compile of the same model (another mode) could otherwise reuse the first one's graphs.
    """
    torch._dynamo.reset()
    compiled = torch.compile(model) if mode is None else torch.compile(model, mode=mode)
    started = time.perf_counter()
    compiled(example)
    _synchronize(device)
    return Prepared(forward=compiled, compile_s=time.perf_counter() - started, release=torch._dynamo.reset)


def prepare_compile(model: nn.Module, example: torch.Tensor, device: torch.device,
                    max_batch: int) -> Prepared:
    return _prepare_compiled(model, example, device, None)


def prepare_compile_max_autotune(model: nn.Module, example: torch.Tensor, device: torch.device,
                                 max_batch: int) -> Prepared:
    # On a CPU max-autotune mostly tunes GPU kernels (Triton templates, CUDA graphs): CUDA only.
    require_cuda(device)
    return _prepare_compiled(model, example, device, "max-autotune")
