"""Modes that stay inside PyTorch: eager variants, TorchScript, torch.compile."""

from __future__ import annotations

import copy
import time
from contextlib import AbstractContextManager

import torch
from torch import nn

from bench.deploy.prepared import ModeUnavailable, Prepared
from bench.evaluate.timing import _synchronize
from bench.jit_deprecation import jit_deprecations_once


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


def prepare_torchscript(model: nn.Module, example: torch.Tensor, device: torch.device,
                        max_batch: int) -> Prepared:
    """torch.jit.trace, then torch.jit.freeze (weights folded in as constants).

    TorchScript is deprecated in recent torch. The first warning is named in the row (a reader
    should know this mode is on its way out); torch's deprecation warnings are shown once per
    process (bench.jit_deprecation), any other warning every time.
    """
    started = time.perf_counter()
    with jit_deprecations_once() as warned:
        frozen = torch.jit.freeze(torch.jit.trace(model, example))
    compile_s = time.perf_counter() - started
    extra = {"deploy_warning_torchscript": warned[0] if warned else None}
    return Prepared(forward=frozen, compile_s=compile_s, extra=extra)


def no_recompilation() -> AbstractContextManager:
    """Inside it, a torch.compile'd function meeting a shape it has no graph for raises (dynamo's
    RecompileError) instead of compiling: around the timed calls, a compile would be timed."""
    return torch._dynamo.config.patch(error_on_recompile=True)


def _compile_settings() -> dict:
    # Recompiling is allowed again while compiling ahead of time. Past dynamo's per-function limit
    # on graphs (8) it would quietly run eager instead; where torch can say so, it must raise.
    settings = {"error_on_recompile": False}
    if hasattr(torch._dynamo.config, "fail_on_recompile_limit_hit"):
        settings["fail_on_recompile_limit_hit"] = True
    return settings


class PerShapeCompiler:
    """Compiles a torch.compile'd model for each new input shape, outside any timed call, and keeps
    each batch size's compile time."""

    def __init__(self, compiled: nn.Module, device: torch.device):
        self.compiled, self.device = compiled, device
        self.compile_s_by_batch: dict[int, float] = {}
        self._shapes: set[tuple[int, ...]] = set()

    def compile_for(self, x: torch.Tensor) -> None:
        shape = tuple(x.shape)
        if shape in self._shapes:
            return
        with torch._dynamo.config.patch(**_compile_settings()):
            started = time.perf_counter()
            self.compiled(x)  # torch.compile is lazy: the first call at a shape traces and compiles
            if self.device.type == "cuda":
                # max-autotune's CUDA graph trees run a new shape once more to warm up and once to
                # record before they replay: building, not a request, so not in a timed call.
                self.compiled(x)
                self.compiled(x)
            _synchronize(self.device)
        self.compile_s_by_batch[shape[0]] = time.perf_counter() - started
        self._shapes.add(shape)


def _require_cpp_compiler(device: torch.device) -> None:
    """Inductor's CPU code is C++: without a compiler the mode cannot run here (n/a), which is not
    a failure of the mode (error)."""
    if device.type != "cpu":
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # a private helper; without it the first compile says what is missing
        return
    try:
        get_cpp_compiler()
    except Exception as exc:  # noqa: BLE001 - inductor raises its own InvalidCxxCompiler
        raise ModeUnavailable(f"no C++ compiler for torch.compile on the CPU ({type(exc).__name__})") from None


def _prepare_compiled(model: nn.Module, example: torch.Tensor, device: torch.device,
                      mode: str | None) -> Prepared:
    """One static-shape graph per batch size, each compiled before it is timed.

    dynamic=False, not one graph with a dynamic batch: a deployment pinned to a batch size ships a
    graph specialized to it (max-autotune picks kernels per shape, and its CUDA graphs need static
    shapes), and dynamo never makes batch 1 dynamic anyway, so batch 1 would be its own graph
    regardless. Without it the second batch size seen would also switch dynamo to a dynamic-batch
    graph that the throughput batch then reuses, timing a different program than batch 1's.
    compile_s is batch 1's compile; the row adds each later batch size's (compile_for).

    Dynamo's caches are reset first: they are keyed on the forward's code, and a second
    torch.compile of the same model (another mode) could otherwise reuse the first one's graphs.
    """
    _require_cpp_compiler(device)
    torch._dynamo.reset()
    options = {"dynamic": False} if mode is None else {"dynamic": False, "mode": mode}
    compiler = PerShapeCompiler(torch.compile(model, **options), device)
    compiler.compile_for(example)
    return Prepared(forward=compiler.compiled, compile_s=compiler.compile_s_by_batch[example.shape[0]],
                    release=torch._dynamo.reset, compile_for=compiler.compile_for,
                    compile_s_by_batch=compiler.compile_s_by_batch, timing_context=no_recompilation)


def prepare_compile(model: nn.Module, example: torch.Tensor, device: torch.device,
                    max_batch: int) -> Prepared:
    return _prepare_compiled(model, example, device, None)


def prepare_compile_max_autotune(model: nn.Module, example: torch.Tensor, device: torch.device,
                                 max_batch: int) -> Prepared:
    # On a CPU max-autotune mostly tunes GPU kernels (Triton templates, CUDA graphs): CUDA only.
    require_cuda(device)
    return _prepare_compiled(model, example, device, "max-autotune")
