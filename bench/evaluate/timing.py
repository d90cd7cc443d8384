"""Device-aware latency timing, shared by eager efficiency and every later deployment mode.

Two layers:

- `measure_latency(fn, device=...)` times a zero-argument callable: warm-up first, then one
  sample per call. On CUDA each sample is bracketed by CUDA events, recorded on the current
  stream of the model's device with that device made current (`cuda:1` is timed on cuda:1),
  and we wait for the end event before the next call, so a sample is the device time of one
  request, not the time to enqueue it. Elsewhere it is `time.perf_counter` around the call.
- `mode_latency(mode, make_runner, device)` turns that into the flat result keys for one
  execution mode (eager, torchscript, tensorrt, compile, onnxruntime): batch-1 latency and
  large-batch throughput. A mode only supplies `make_runner(batch) -> zero-arg callable`, which
  prepares its inputs on the device beforehand, so every mode is timed by the same code.

Nothing here sets thread counts: that is the caller's (or the user's) decision.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable

import numpy as np
import torch

# Stops an open-ended `min_time_s` loop on a function that is unexpectedly fast (or a clock that
# misbehaves) from running forever.
DEFAULT_MAX_ITERS = 10_000


def _as_device(device: str | torch.device) -> torch.device:
    return device if isinstance(device, torch.device) else torch.device(device)


def _synchronize(device: torch.device) -> None:
    """Wait for queued device work, so a host clock read afterwards includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _on_device(device: torch.device) -> contextlib.AbstractContextManager:
    """Makes `device` the current CUDA device. Events record on the current device's current
    stream, and the model's kernels go to ITS device's current stream: with `--device cuda:1` and
    cuda:0 current, events on cuda:0's idle stream would time nothing."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _cuda_sample_ms(fn: Callable[[], Any], device: torch.device) -> float:
    # The stream the model's kernels are queued on (torch's current stream for that device);
    # fn is called with `device` current, so work it launches lands there too.
    stream = torch.cuda.current_stream(device)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record(stream)
    fn()
    end.record(stream)
    # Waiting per sample: latency means one request at a time, with no overlap between calls.
    end.synchronize()
    return start.elapsed_time(end)  # already milliseconds


def _host_sample_ms(fn: Callable[[], Any], device: torch.device) -> float:
    t0 = time.perf_counter()
    fn()
    _synchronize(device)  # no-op on CPU; makes MPS honest
    return (time.perf_counter() - t0) * 1e3


def measure_latency(
    fn: Callable[[], Any],
    *,
    warmup: int = 10,
    iters: int = 50,
    min_time_s: float | None = None,
    max_iters: int = DEFAULT_MAX_ITERS,
    device: str | torch.device,
) -> dict:
    """Time `fn()` and summarise per-call times in milliseconds.

    Runs `warmup` untimed calls, then timed calls until at least `iters` samples AND (if given)
    `min_time_s` seconds of timed wall clock, never more than `max_iters` samples.
    Returns {"median_ms", "p90_ms", "std_ms", "iters"}; `iters` is the number actually timed.
    """
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    device = _as_device(device)
    with _on_device(device):
        samples = _samples_ms(fn, device, warmup, iters, min_time_s, max_iters)

    arr = np.asarray(samples, dtype=np.float64)
    return {
        "median_ms": float(np.median(arr)),
        "p90_ms": float(np.percentile(arr, 90)),
        # Sample std (ddof=1): spread between calls, 0.0 when only one call was timed.
        "std_ms": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "iters": int(arr.size),
    }


def _samples_ms(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int,
                min_time_s: float | None, max_iters: int) -> list[float]:
    """Warm-up calls, then per-call times until enough samples and (if given) enough seconds."""
    use_events = device.type == "cuda"
    for _ in range(warmup):
        fn()
    _synchronize(device)  # warm-up work must not leak into the first sample

    samples: list[float] = []
    started = time.perf_counter()
    while True:
        samples.append(_cuda_sample_ms(fn, device) if use_events else _host_sample_ms(fn, device))
        enough_iters = len(samples) >= iters
        enough_time = min_time_s is None or time.perf_counter() - started >= min_time_s
        if (enough_iters and enough_time) or len(samples) >= max_iters:
            return samples


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a device out-of-memory error, whichever way the backend reports it."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    # Older code paths and some backends (cuDNN, cuBLAS, TensorRT) raise a plain RuntimeError.
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _release_device_memory(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def _throughput_at_largest_batch(
    make_runner: Callable[[int], Callable[[], Any]],
    device: torch.device,
    batch: int,
    *,
    warmup: int,
    iters: int,
    min_time_s: float | None,
) -> tuple[dict, int]:
    """Time the largest batch <= `batch` that fits, halving on out-of-memory."""
    while True:
        try:
            runner = make_runner(batch)
            return measure_latency(
                runner, warmup=warmup, iters=iters, min_time_s=min_time_s, device=device
            ), batch
        except Exception as exc:  # noqa: BLE001 - only OOM is retried, the rest re-raised
            if not is_out_of_memory(exc) or batch <= 1:
                raise
        # Outside the except block, so the traceback (and the tensors its frames hold) is gone
        # before we ask the allocator to give memory back.
        runner = None
        _release_device_memory(device)
        batch //= 2


def mode_latency(
    mode: str,
    make_runner: Callable[[int], Callable[[], Any]],
    device: str | torch.device,
    *,
    batch1_warmup: int = 10,
    batch1_iters: int = 50,
    throughput_batch: int = 64,
    throughput_warmup: int = 1,
    throughput_iters: int = 3,
    min_time_s: float | None = None,
) -> dict:
    """Batch-1 latency and large-batch throughput of one execution mode, as flat result keys.

    `make_runner(batch)` returns a zero-argument callable that runs one inference on a batch
    whose input is already on the device (model-only time, no host-to-device copy).

    Keys (for mode "eager" and throughput_batch 64):
      latency_ms_b1_eager, latency_ms_b1_eager_p90, latency_ms_b1_eager_std  (milliseconds)
      throughput_ips_b64_eager   images per second = batch / median seconds per batch
      throughput_batch_eager     the batch actually timed
    The throughput key is named after the REQUESTED batch so that columns stay the same across
    machines; if that batch ran out of device memory it was halved until it fit, and
    throughput_batch_<mode> says which batch the number really comes from.

    Iteration defaults are sized for a small CPU, where one batch of 64 can take seconds and
    averages 64 images per sample. On a GPU a batch takes milliseconds: pass `min_time_s`
    (e.g. 1.0) so both measurements run long enough to be stable.
    """
    device = _as_device(device)
    b1 = measure_latency(
        make_runner(1), warmup=batch1_warmup, iters=batch1_iters,
        min_time_s=min_time_s, device=device,
    )
    big, used_batch = _throughput_at_largest_batch(
        make_runner, device, throughput_batch,
        warmup=throughput_warmup, iters=throughput_iters, min_time_s=min_time_s,
    )
    return {
        f"latency_ms_b1_{mode}": b1["median_ms"],
        f"latency_ms_b1_{mode}_p90": b1["p90_ms"],
        f"latency_ms_b1_{mode}_std": b1["std_ms"],
        f"throughput_ips_b{throughput_batch}_{mode}": used_batch / (big["median_ms"] / 1e3),
        f"throughput_batch_{mode}": used_batch,
    }
