"""The deployment modes by name, in the order a row lists them."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from bench.deploy.onnx_mode import prepare_onnxruntime
from bench.deploy.prepared import Prepared
from bench.deploy.tensorrt_mode import prepare_tensorrt, prepare_tensorrt_fp16
from bench.deploy.torch_modes import (
    prepare_compile,
    prepare_compile_max_autotune,
    prepare_eager,
    prepare_eager_bf16,
    prepare_eager_cl,
    prepare_eager_fp16,
    prepare_torchscript,
)

Prepare = Callable[[nn.Module, torch.Tensor, torch.device, int], Prepared]

# "eager" is the reference every other mode is checked against; it must stay first.
MODES: dict[str, Prepare] = {
    "eager": prepare_eager,
    "eager_fp16": prepare_eager_fp16,  # CUDA only (autocast)
    "eager_bf16": prepare_eager_bf16,  # CUDA only (autocast)
    "eager_cl": prepare_eager_cl,  # CUDA only (channels_last)
    "torchscript": prepare_torchscript,
    "compile": prepare_compile,
    "compile_max_autotune": prepare_compile_max_autotune,  # CUDA only
    "onnxruntime": prepare_onnxruntime,
    "tensorrt": prepare_tensorrt,  # CUDA + torch_tensorrt
    "tensorrt_fp16": prepare_tensorrt_fp16,  # CUDA + torch_tensorrt
}

DEFAULT_MODES: tuple[str, ...] = tuple(MODES)

# What a suite names in `modes = [...]`: a group of the modes above. Each group brings its precision
# and layout variants along (the CUDA-only ones say "n/a: no CUDA device" on a CPU). Plain eager is
# measured by every run (bench.evaluate.efficiency) and is the reference the others are checked against.
MODE_GROUPS: dict[str, tuple[str, ...]] = {
    "eager": ("eager_fp16", "eager_bf16", "eager_cl"),
    "torchscript": ("torchscript",),
    "compile": ("compile", "compile_max_autotune"),
    "onnxruntime": ("onnxruntime",),
    "tensorrt": ("tensorrt", "tensorrt_fp16"),
}

# Modes compiled once per input shape (torch.compile with static shapes); besides compile_s_<mode>
# they have compile_s_b1_<mode> and compile_s_b<throughput batch>_<mode>.
PER_BATCH_COMPILE_MODES: tuple[str, ...] = ("compile", "compile_max_autotune")

# Mode-specific columns, present (None) even when the mode fails, so the table keeps its shape.
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "torchscript": ("deploy_warning_torchscript",),
    "onnxruntime": ("provider_onnxruntime",),
    "tensorrt": ("trt_engines_tensorrt", "trt_torch_ops_tensorrt"),
    "tensorrt_fp16": ("trt_engines_tensorrt_fp16", "trt_torch_ops_tensorrt_fp16"),
}
