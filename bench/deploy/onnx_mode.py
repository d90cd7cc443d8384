"""ONNX Runtime: export with the TorchScript-based exporter, run with the best provider there is."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.deploy.prepared import ModeUnavailable, Prepared

INPUT, OUTPUT = "input", "logits"
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")  # best first


def _cuda_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def _providers(ort, device: torch.device) -> list:
    """TensorRT EP, then CUDA EP, then CPU. ONNX Runtime skips a listed provider that fails to
    load (TensorRT libraries missing), so the one really used is read back from the session."""
    providers: list = []
    if device.type == "cuda":
        available = ort.get_available_providers()
        options = {"device_id": _cuda_index(device)}
        providers = [(name, options) for name in GPU_PROVIDERS if name in available]
    return providers + ["CPUExecutionProvider"]


def _export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    # dynamo=False: the TorchScript-based exporter handles every zoo model; the batch axis is
    # dynamic so one file serves batch 1, the agreement check and the throughput batch.
    torch.onnx.export(model, (example,), str(path), input_names=[INPUT], output_names=[OUTPUT],
                      dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}, dynamo=False)


def _host_mode(session) -> tuple:
    """CPU provider: the input is a numpy array made before the timed call, like an eager
    input already on its device; the output comes back as a tensor without a copy."""
    def convert(x: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(x.detach().float().cpu().numpy())

    def forward(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT], {INPUT: array})[0])
    return convert, forward


@dataclass
class _BoundBatch:
    """One batch bound to ONNX Runtime: the input and output device buffers and the binding naming
    them, made once before the timed calls, so a timed call is the run alone."""

    binding: Any
    input: torch.Tensor  # held: the binding points at its memory
    output: torch.Tensor


def _device_mode(session, device: torch.device, per_input: tuple[int, ...]) -> tuple:
    """GPU provider (CUDA or TensorRT EP): bind torch's device memory, so no host copy enters the
    timed call. `convert` builds the binding and the output buffer; `forward` only runs it."""
    index = _cuda_index(device)

    def convert(x: torch.Tensor) -> _BoundBatch:
        x = x.detach().float().contiguous()
        out = torch.empty((x.shape[0], *per_input), dtype=torch.float32, device=x.device)
        binding = session.io_binding()
        binding.bind_input(INPUT, "cuda", index, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output(OUTPUT, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        # ONNX Runtime reads the buffer on its own stream: torch's work writing it must be done.
        torch.cuda.synchronize(device)
        return _BoundBatch(binding, x, out)

    def forward(bound: _BoundBatch) -> torch.Tensor:
        # Returns once the providers have synchronized, so `output` holds this run's logits (the
        # same buffer every call: a caller keeping one result must copy it).
        session.run_with_iobinding(bound.binding)
        return bound.output
    return convert, forward


def prepare_onnxruntime(model: nn.Module, example: torch.Tensor, device: torch.device,
                        max_batch: int) -> Prepared:
    """compile_s covers export, session creation and one first run (where the TensorRT provider
    builds its engine), so none of that lands in a latency sample."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModeUnavailable("onnxruntime not installed") from None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        _export(model, example, path)
        session = ort.InferenceSession(str(path), providers=_providers(ort, device))
    provider = session.get_providers()[0]
    if provider == "CPUExecutionProvider":
        convert, forward = _host_mode(session)
    else:
        # One output row per input: (classes,) for a classifier, (classes, H, W) for a segmenter.
        per_input = tuple(int(d) for d in model(example).shape[1:])
        convert, forward = _device_mode(session, device, per_input)
    forward(convert(example))
    return Prepared(forward=forward, convert=convert, compile_s=time.perf_counter() - started,
                    extra={"provider_onnxruntime": provider})
