"""Inference latency of zoo entries per execution mode and batch size, with pytest-benchmark.

    pytest bench --benchmark-only                       # the small default set
    pytest bench --benchmark-only --bb-entries 'resnet*' --bb-batches 1,64 --bb-size entry

Models are built with untrained weights (`pretrained=False`): latency depends on the
architecture, input size, batch, mode and machine, not on the values of the weights, so no
checkpoint or download is needed and every registered entry can be timed anywhere.

One benchmark times one forward pass of one batch whose input already sits on the device (the
model-only time, no host-to-device copy), under `torch.inference_mode`. Everything that is not
inference (building, tracing, freezing, the check against eager, warm-up) happens before the
clock starts. Cases are parametrized by bench/conftest.py from the `--bb-*` options.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

import zoo
from bench.jit_deprecation import jit_deprecations_once

pytest.importorskip("pytest_benchmark")

# Untimed calls before timing: the first calls allocate, pick kernels, and (TorchScript's
# profiling executor) specialize and optimize the graph; a GPU also needs time to raise its clocks.
WARMUP_MIN_CALLS = 3
WARMUP_MIN_S = 0.5

# A frozen graph folds batch norm into convolutions and may reorder float sums; anything beyond
# these tolerances is a wrong model, not rounding. They hold in IEEE fp32, which is why the check
# runs with TF32 off (full_fp32).
RTOL, ATOL = 1e-3, 1e-4


@contextlib.contextmanager
def full_fp32(device: torch.device) -> Iterator[None]:
    """cuDNN convolutions (TF32 by default) and matmuls in IEEE fp32 on CUDA, for the check only.

    TF32 keeps 10 mantissa bits, about 1e-3 relative error per product. Freezing folds batch norm
    into the convolution weights, so eager and frozen round differently, and over a deep network
    their outputs drift past RTOL: a false alarm about a correct graph. Whether the frozen graph
    computes the same function is a question about the graph, so it is asked in full fp32, where
    only the order of float sums differs; the timed calls then run with the machine's settings, as
    a deployment would. The fp32_precision API (torch >= 2.9) where it exists: torch refuses to
    read the legacy allow_tf32 flags once anything set the new ones.
    """
    if device.type != "cuda":
        yield
        return
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        flags = [(torch.backends.cudnn.conv, "fp32_precision", "ieee"),
                 (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    else:
        flags = [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]
    saved = [getattr(owner, name) for owner, name, _ in flags]
    try:
        for owner, name, value in flags:
            setattr(owner, name, value)
        yield
    finally:
        for (owner, name, _), value in zip(flags, saved):
            setattr(owner, name, value)


def _torchscript(model: nn.Module, example: torch.Tensor) -> nn.Module:
    # torch 2.x deprecates TorchScript but deployments still ship it; timing it is the point here.
    # Its FutureWarnings are shown once per process (not once per case, which buried the table).
    with jit_deprecations_once(), torch.no_grad():  # a traced graph must not record autograd state
        traced = torch.jit.trace(model, example, check_trace=False)
        return torch.jit.freeze(traced)


def prepare(mode: str, model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The callable model for `mode`, already compiled; checked against eager before it is timed."""
    if mode == "eager":
        return model
    if mode == "torchscript":
        compiled = _torchscript(model, example)
    else:  # bench/conftest.py validates --bb-modes, so this is a programming error
        raise ValueError(f"unknown mode {mode!r}")
    with torch.inference_mode(), full_fp32(example.device):
        expected, got = model(example), compiled(example)
    torch.testing.assert_close(got, expected, rtol=RTOL, atol=ATOL,
                               msg=lambda m: f"{mode} output differs from eager: {m}")
    return compiled


def timed_call(model: nn.Module, x: torch.Tensor, device: torch.device) -> Callable[[], None]:
    """One inference; on CUDA it waits for the kernels, so the host clock measures their work."""
    if device.type == "cuda":
        def call() -> None:
            model(x)
            torch.cuda.synchronize(device)
    else:
        def call() -> None:
            model(x)
    return call


def warm_up(call: Callable[[], None]) -> None:
    calls, started = 0, time.perf_counter()
    while calls < WARMUP_MIN_CALLS or time.perf_counter() - started < WARMUP_MIN_S:
        call()
        calls += 1


def test_latency(benchmark, bb_case, device):
    name, size, batch, mode = bb_case
    entry = zoo.get(name)
    torch.manual_seed(0)  # the same weights and input every run, so the eager check is reproducible
    model = entry.build(input_size=size, pretrained=False).eval().to(device)
    x = torch.randn(batch, entry.in_channels, size, size, device=device)
    runnable = prepare(mode, model, x)  # traced at the timed shape, checked on the timed input

    benchmark.group = f"{name} {size}px batch {batch}"  # eager and torchscript side by side
    benchmark.extra_info.update(entry=name, input_size=size, batch=batch, mode=mode, device=str(device),
                                torch_threads=torch.get_num_threads())
    call = timed_call(runnable, x, device)
    # inference_mode is entered once around all calls, not inside the timed function, so its
    # (small) enter/exit cost is not part of the number.
    with torch.inference_mode():
        if not benchmark.disabled:
            warm_up(call)
        benchmark(call)

    if not benchmark.disabled:
        median_s = benchmark.stats.stats.median
        benchmark.extra_info["images_per_s"] = round(batch / median_s, 1)
