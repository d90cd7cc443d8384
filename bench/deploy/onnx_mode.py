"""ONNX Runtime: export with the TorchScript-based exporter, run with the best provider there is."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

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


def _device_mode(session, device: torch.device, num_classes: int) -> tuple:
    """GPU provider: bind torch's device memory, so no host copy enters the timed call."""
    index = _cuda_index(device)

    def convert(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().contiguous()
        # ONNX Runtime reads the buffer on its own stream: torch's work writing it must be done.
        torch.cuda.synchronize(device)
        return x

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = torch.empty((x.shape[0], num_classes), dtype=torch.float32, device=x.device)
        binding = session.io_binding()
        binding.bind_input(INPUT, "cuda", index, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output(OUTPUT, "cuda", index, np.float32, tuple(out.shape), out.data_ptr())
        session.run_with_iobinding(binding)  # returns once the providers have synchronized
        return out
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
        num_classes = int(model(example).shape[1])
        convert, forward = _device_mode(session, device, num_classes)
    forward(convert(example))
    return Prepared(forward=forward, convert=convert, compile_s=time.perf_counter() - started,
                    extra={"provider_onnxruntime": provider})
