"""Torch-TensorRT (dynamo path), fp32 and fp16, on CUDA only."""

from __future__ import annotations

import copy
import operator
import re
import time

import torch
from torch import nn

from bench.deploy.prepared import ModeUnavailable, Prepared
from bench.deploy.torch_modes import require_cuda
from bench.evaluate.timing import _synchronize


def _import_torch_tensorrt():
    try:
        import torch_tensorrt
    except ImportError:
        raise ModeUnavailable("torch_tensorrt not installed") from None
    return torch_tensorrt


def _version(module) -> tuple[int, int]:
    found = re.match(r"(\d+)\.(\d+)", getattr(module, "__version__", ""))
    return (int(found[1]), int(found[2])) if found else (0, 0)


# The runtime modules Torch-TensorRT puts one of per TensorRT engine: the C++ runtime's and the
# Python runtime's. Matched by class name, so counting needs no torch_tensorrt import (and a
# wrapper such as "TRTInterpreter" or "MutableTorchTensorRTModule", which holds no engine, is not
# counted).
ENGINE_MODULE_CLASSES = frozenset({"TorchTensorRTModule", "PythonTorchTensorRTModule"})


def count_trt_engines(module: nn.Module) -> int:
    """TensorRT engines in a compiled module tree."""
    return sum(1 for _, m in module.named_modules() if type(m).__name__ in ENGINE_MODULE_CLASSES)


def _engine_counts(mode: str, compiled: nn.Module) -> dict:
    """How much of the graph TensorRT took: engines and the operations left to PyTorch between
    them (call_function nodes, tuple indexing aside). None where the compiled object is not a
    GraphModule we can read."""
    graph = getattr(compiled, "graph", None)
    if graph is None:
        return {f"trt_engines_{mode}": None, f"trt_torch_ops_{mode}": None}
    torch_ops = sum(1 for n in graph.nodes if n.op == "call_function" and n.target is not operator.getitem)
    return {f"trt_engines_{mode}": count_trt_engines(compiled), f"trt_torch_ops_{mode}": torch_ops}


def _prepare(mode: str, model: nn.Module, example: torch.Tensor, device: torch.device, max_batch: int,
             dtype: torch.dtype) -> Prepared:
    require_cuda(device)
    trt = _import_torch_tensorrt()
    chw = tuple(example.shape[1:])
    # One engine for every batch the row runs: 1 (latency), the agreement chunks and the
    # throughput batch. Tuned for batch 1, the row's headline figure.
    spec = trt.Input(min_shape=(1, *chw), opt_shape=(1, *chw), max_shape=(max_batch, *chw), dtype=dtype)
    options = {}
    if dtype == torch.float16 and _version(trt) < (2, 13):
        # Older releases choose kernels by enabled_precisions; from 2.13 on the dynamo path ignores
        # it and follows the model's own dtype, which is why the model is made half as well.
        options["enabled_precisions"] = {torch.float16}
    started = time.perf_counter()
    compiled = trt.compile(model, ir="dynamo", inputs=[spec], **options)
    compiled(example.to(dtype))
    _synchronize(device)
    compile_s = time.perf_counter() - started
    try:
        counts = _engine_counts(mode, compiled)
    except Exception:  # noqa: BLE001 - a nice-to-have column never fails the mode
        counts = {f"trt_engines_{mode}": None, f"trt_torch_ops_{mode}": None}
    return Prepared(forward=compiled, convert=lambda x: x.to(dtype), compile_s=compile_s, extra=counts)


def prepare_tensorrt(model: nn.Module, example: torch.Tensor, device: torch.device, max_batch: int) -> Prepared:
    return _prepare("tensorrt", model, example, device, max_batch, torch.float32)


def prepare_tensorrt_fp16(model: nn.Module, example: torch.Tensor, device: torch.device,
                          max_batch: int) -> Prepared:
    require_cuda(device)  # before the copy: no point duplicating weights on a CPU machine
    half_model = copy.deepcopy(model).half()
    return _prepare("tensorrt_fp16", half_model, example, device, max_batch, torch.float16)
