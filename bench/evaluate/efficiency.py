"""What a model costs: parameters, MACs, file size and eager latency, as one flat result row.

Units are in the key names: `params` (count), `params_m` (millions), `gmacs` (10^9 multiply-
accumulates at batch 1 and the entry's input size), `size_mb` (10^6 bytes), `latency_ms_*`,
`throughput_ips_*` (images per second). Later deployment modes reuse `timing.mode_latency`, so
their keys differ from the eager ones only in the mode suffix.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import tempfile
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from bench.evaluate.timing import mode_latency

log = logging.getLogger(__name__)


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters; a parameter shared by several modules is counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _check_input_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4 or shape[0] != 1:
        raise ValueError(f"input_shape must be (1, C, H, W), got {input_shape!r}")
    return shape


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the model lives and what float type it computes in.

    Buffers count too: a model without parameters (knn.pixels, an ONNX Runtime wrapper) still
    lives on a device. Only floating tensors decide the dtype: index buffers are integers.
    """
    tensors = list(itertools.chain(model.parameters(), model.buffers()))
    device = tensors[0].device if tensors else torch.device("cpu")
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
    return device, dtype


def _describe_unsupported(counter: Any) -> str | None:
    """'aten::add_ x8, aten::max_pool2d x1', or None when fvcore skipped nothing."""
    if not counter:
        return None
    ops = ", ".join(f"{name} x{n}" for name, n in sorted(counter.items()))
    return f"not counted by fvcore: {ops}"


def _sdpa_macs(inputs: list, outputs: list) -> int:
    """aten::scaled_dot_product_attention, which fvcore has no formula for: its two matmuls,
    Q·Kᵀ (L x S per head, E deep) and softmax·V (L x S, Ev wide), one MAC per multiply-add, as
    torch.utils.flop_counter counts the fused kernels (halved: it counts FLOPs). The softmax,
    scale and mask are element-wise, skipped like every other element-wise op."""
    from fvcore.nn.jit_handles import get_shape

    query, key, value = (get_shape(x) for x in inputs[:3])
    *batch, length, depth = query  # (..., L, E); grouped-query K/V broadcast over Q's heads
    return math.prod(batch) * length * key[-2] * (depth + value[-1])


# Operators fvcore does not count by itself (it would name them in gmacs_note and count 0):
# without this, ViT and Swin GMACs left out attention.
EXTRA_OP_HANDLES = {"aten::scaled_dot_product_attention": _sdpa_macs}


def _flop_count_analysis():
    with warnings.catch_warnings():
        # fvcore's import touches deprecated torch.jit APIs; the warning is not ours to act on.
        warnings.simplefilter("ignore")
        from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis


def macs_by_operator(model: nn.Module, input_shape: tuple[int, int, int, int]) -> tuple[Counter, Counter]:
    """fvcore's MACs per operator for one forward pass at `input_shape` (1, C, H, W), and the
    operators it skipped (name -> how often). Raises ImportError without fvcore and whatever
    tracing the model raises; count_gmacs turns both into a note."""
    shape = _check_input_shape(input_shape)
    FlopCountAnalysis = _flop_count_analysis()
    device, dtype = _model_device_dtype(model)
    was_training = model.training
    model.eval()  # batch-1 BatchNorm in train mode can refuse to run; MACs do not depend on it
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # jit tracer warnings about Python control flow
            analysis = FlopCountAnalysis(model, (torch.zeros(shape, device=device, dtype=dtype),))
            analysis.set_op_handle(**EXTRA_OP_HANDLES)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            return Counter(analysis.by_operator()), Counter(analysis.unsupported_ops())
    finally:
        model.train(was_training)


def count_gmacs(
    model: nn.Module, input_shape: tuple[int, int, int, int]
) -> tuple[float | None, str | None]:
    """GMACs of one forward pass at `input_shape` (1, C, H, W), with a note.

    fvcore's FlopCountAnalysis counts one multiply-add as one "flop", so its total is MACs;
    we only divide by 1e9. Attention (scaled_dot_product_attention) is counted by
    EXTRA_OP_HANDLES. Ops fvcore has no formula for (element-wise adds, pooling, activations)
    are skipped; the note names them rather than the console being flooded with one warning per
    op. Returns (None, reason) when fvcore is missing or cannot trace the model: a missing number
    with a reason, never a crash.
    """
    _check_input_shape(input_shape)
    try:
        by_operator, unsupported = macs_by_operator(model, input_shape)
    except ImportError:
        return None, "n/a: fvcore not installed"
    except Exception as exc:  # noqa: BLE001 - any tracing failure becomes a recorded reason
        log.warning("GMACs not counted for %s: %s", type(model).__name__, exc)
        return None, f"n/a: fvcore failed: {type(exc).__name__}: {exc}"
    return sum(by_operator.values()) / 1e9, _describe_unsupported(unsupported)


def file_size_mb(path: str | os.PathLike) -> float:
    """File size in MB = bytes / 1e6 (decimal megabytes, as disks and model cards use; not MiB)."""
    return os.path.getsize(path) / 1e6


def state_dict_size_mb(model: nn.Module) -> float:
    """Size in MB (1e6 bytes) of the model's weights serialized with safetensors.

    safetensors stores raw tensor bytes plus a small JSON header, so this is what a checkpoint of
    the weights alone costs on disk. `save_model` drops duplicates of tied tensors instead of
    failing on them. Falls back to torch.save where safetensors is not installed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights"
        try:
            from safetensors.torch import save_model
        except ImportError:
            torch.save(model.state_dict(), path)
        else:
            save_model(model, str(path))
        return file_size_mb(path)


def eager_latency(
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    device: str | torch.device,
    *,
    batch1_iters: int = 50,
    throughput_batch: int = 64,
    **timing_kwargs: Any,
) -> dict:
    """Eager PyTorch batch-1 latency and large-batch throughput on `device`.

    Moves the model to `device` in place (as nn.Module.to does) and puts it in eval mode. Inputs
    are created on the device before timing, so the numbers are model-only: no data loading, no
    host-to-device copy. Keys: latency_ms_b1_eager, latency_ms_b1_eager_p90,
    latency_ms_b1_eager_std, throughput_ips_b<throughput_batch>_eager, throughput_batch_eager
    (see timing.mode_latency for the out-of-memory fallback). `timing_kwargs` go to mode_latency
    (batch1_warmup, throughput_warmup, throughput_iters, min_time_s).
    """
    shape = _check_input_shape(input_shape)
    model.to(device).eval()
    _, dtype = _model_device_dtype(model)

    def make_runner(batch: int) -> Callable[[], Any]:
        x = torch.randn((batch, *shape[1:]), device=device, dtype=dtype)
        return lambda: model(x)

    with torch.inference_mode():
        return mode_latency(
            "eager", make_runner, device,
            batch1_iters=batch1_iters, throughput_batch=throughput_batch, **timing_kwargs,
        )


def efficiency_row(
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    device: str | torch.device,
    checkpoint_path: str | os.PathLike | None = None,
    **latency_kwargs: Any,
) -> dict:
    """Everything efficiency measures for one model, as flat result keys.

    params, params_trainable, params_m, gmacs, gmacs_note, size_mb, plus eager_latency's keys.
    size_mb is the checkpoint file's size when `checkpoint_path` is given (what a user
    downloads), else the safetensors size of the state dict. MACs are counted before the model
    moves, so tracing runs wherever the caller built it. `latency_kwargs` go to eager_latency.
    """
    params = count_params(model)
    gmacs, gmacs_note = count_gmacs(model, input_shape)
    size_mb = file_size_mb(checkpoint_path) if checkpoint_path else state_dict_size_mb(model)
    return {
        "params": params,
        "params_trainable": count_params(model, trainable_only=True),
        "params_m": params / 1e6,
        "gmacs": gmacs,
        "gmacs_note": gmacs_note,
        "size_mb": size_mb,
        **eager_latency(model, input_shape, device, **latency_kwargs),
    }
