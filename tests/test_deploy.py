"""Deployment modes: each checked against eager, timed by the shared code, n/a with a reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.data.batches import Normalizer, to_model_input
from bench.deploy import DEFAULT_MODES, MODES, Prepared, deployment_row
from bench.evaluate import timing
from bench.evaluate.timing import measure_latency

# Small counts: these tests check the plumbing, not the machine.
FAST = dict(batch1_warmup=1, batch1_iters=2, throughput_warmup=1, throughput_iters=1, throughput_batch=4)
SHAPE = (1, 1, 16, 16)
CUDA_ONLY = ("eager_fp16", "eager_bf16", "eager_cl", "compile_max_autotune", "tensorrt", "tensorrt_fp16")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only notes")


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 4)).eval()


def check_images(n: int = 12) -> torch.Tensor:
    return torch.randn((n, *SHAPE[1:]), generator=torch.Generator().manual_seed(1))


def custom_mode(forward_for):
    """A registry with eager plus a mode 'custom' whose forward is forward_for(model)."""
    def prepare(model, example, device, max_batch):
        return Prepared(forward=forward_for(model), compile_s=0.0)
    return {"eager": MODES["eager"], "custom": prepare}


# --- timing, shared with eager efficiency ------------------------------------------------------

def test_warmup_calls_are_made_and_not_timed():
    calls = []
    stats = measure_latency(lambda: calls.append(1), warmup=3, iters=5, device="cpu")
    assert len(calls) == 8 and stats["iters"] == 5


def test_median_p90_std_of_a_known_sequence(monkeypatch):
    # A fake clock that each call advances by the next duration: 1, 2, ..., 10 ms.
    now = [0.0]
    durations = iter(np.arange(1, 11) / 1e3)
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])

    def fn():
        now[0] += next(durations)

    stats = measure_latency(fn, warmup=0, iters=10, device="cpu")
    assert stats["median_ms"] == pytest.approx(5.5)
    assert stats["p90_ms"] == pytest.approx(9.1)  # numpy's linear interpolation
    assert stats["std_ms"] == pytest.approx(np.std(np.arange(1, 11), ddof=1))


def test_every_mode_call_counted_check_then_warmup_then_samples():
    calls = []

    def counting(model):
        def forward(x):
            calls.append(x.shape[0])
            return model(x)
        return forward

    row = deployment_row(tiny_cnn(), SHAPE, "cpu", check_images(10), modes=("eager", "custom"),
                         registry=custom_mode(counting), check_batch=4, **FAST)
    # Agreement chunks 4+4+2 first, then batch 1 (1 warm-up + 2 timed), then batch 4 (1 + 1).
    assert calls == [4, 4, 2, 1, 1, 1, 4, 4]
    assert row["agreement_custom"] == 1.0 and row["throughput_batch_custom"] == 4


def test_out_of_memory_halves_the_throughput_batch_and_records_it():
    class OomAbove(nn.Module):
        def __init__(self, limit: int):
            super().__init__()
            self.inner, self.limit = tiny_cnn(), limit

        def forward(self, x):
            if x.shape[0] > self.limit:
                raise torch.cuda.OutOfMemoryError(f"CUDA out of memory at batch {x.shape[0]}")
            return self.inner(x)

    row = deployment_row(OomAbove(5), SHAPE, "cpu", check_images(8), modes=("eager",),
                         check_batch=4, **(FAST | {"throughput_batch": 32}))
    assert row["throughput_batch_eager"] == 4  # 32 -> 16 -> 8 -> 4
    assert row["throughput_ips_b32_eager"] > 0  # named after the requested batch
    assert "latency_note_eager" not in row


# --- agreement with eager --------------------------------------------------------------------

def test_a_mode_that_answers_differently_is_flagged():
    # Negated logits: the top-1 class becomes the least likely one.
    row = deployment_row(tiny_cnn(), SHAPE, "cpu", check_images(), modes=("eager", "custom"),
                         registry=custom_mode(lambda model: lambda x: -model(x)), **FAST)
    assert row["agreement_custom"] < 0.995 and row["agreement_flag_custom"] is True
    assert row["max_abs_diff_custom"] > 0
    assert row["latency_ms_b1_custom"] is not None  # flagged, still measured
    assert row["agreement_eager"] is None  # eager is the reference


def test_a_mode_whose_preparation_raises_is_an_error_with_its_message():
    def prepare(model, example, device, max_batch):
        raise RuntimeError("exporter broke\nlong traceback text")

    row = deployment_row(tiny_cnn(), SHAPE, "cpu", check_images(), modes=("eager", "broken"),
                         registry={"eager": MODES["eager"], "broken": prepare}, **FAST)
    assert row["latency_note_broken"] == "error: RuntimeError: exporter broke"
    for key in ("latency_ms_b1_broken", "latency_ms_b1_broken_p90", "throughput_ips_b4_broken",
                "compile_s_broken", "agreement_broken", "agreement_flag_broken"):
        assert key in row and row[key] is None
    assert row["latency_ms_b1_eager"] > 0


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown deployment modes"):
        deployment_row(tiny_cnn(), SHAPE, "cpu", check_images(), modes=("eager", "tensorrtt"))


# --- the real modes ----------------------------------------------------------------------------

def test_torchscript_and_onnxruntime_agree_with_eager():
    pytest.importorskip("onnxruntime")
    model = tiny_cnn()
    row = deployment_row(model, SHAPE, "cpu", check_images(), modes=("eager", "torchscript", "onnxruntime"),
                         **FAST)
    for mode in ("torchscript", "onnxruntime"):
        assert row[f"latency_ms_b1_{mode}"] > 0 and row[f"throughput_ips_b4_{mode}"] > 0
        assert row[f"compile_s_{mode}"] > 0
        assert row[f"agreement_{mode}"] == 1.0 and row[f"agreement_flag_{mode}"] is False
        assert row[f"max_abs_diff_{mode}"] < 1e-4
    assert row["provider_onnxruntime"] == "CPUExecutionProvider"
    warning = row["deploy_warning_torchscript"]
    assert warning is None or (isinstance(warning, str) and "\n" not in warning)
    assert not model.training and next(model.parameters()).dtype == torch.float32


@no_cuda
def test_cuda_only_modes_say_so_and_no_mode_goes_missing():
    modes = tuple(m for m in DEFAULT_MODES if m not in ("torchscript", "compile", "onnxruntime"))
    row = deployment_row(tiny_cnn(), SHAPE, "cpu", check_images(), modes=modes, **FAST)
    for mode in CUDA_ONLY:
        assert row[f"latency_note_{mode}"] == "n/a: no CUDA device"
        assert row[f"latency_ms_b1_{mode}"] is None
    assert "trt_engines_tensorrt" in row and row["trt_engines_tensorrt"] is None
    assert row["latency_ms_b1_eager"] > 0 and "latency_note_eager" not in row


def test_compile_runs_or_says_why():
    row = deployment_row(tiny_cnn(), SHAPE, "cpu", check_images(), modes=("eager", "compile"), **FAST)
    if "latency_note_compile" in row:  # e.g. no C++ compiler for inductor
        assert row["latency_note_compile"].startswith("n/a: ") and row["latency_ms_b1_compile"] is None
    else:
        assert row["latency_ms_b1_compile"] > 0 and row["compile_s_compile"] > 0
        assert row["agreement_compile"] == 1.0


# --- end to end ----------------------------------------------------------------------------------

def test_end_to_end_latency_from_a_decoded_image():
    images = torch.randint(0, 256, (3, *SHAPE[1:]), dtype=torch.uint8)
    normalize = Normalizer((0.5,), (0.25,), torch.device("cpu"))
    row = deployment_row(tiny_cnn(), SHAPE, "cpu", to_model_input(images, normalize), modes=("eager",),
                         e2e_image=images[0], normalize=normalize, **FAST)
    assert row["latency_ms_b1_e2e"] > 0 and "latency_note_e2e" not in row
    row = deployment_row(tiny_cnn(), SHAPE, "cpu", None, modes=("eager",), **FAST)
    assert row["latency_ms_b1_e2e"] is None and row["latency_note_e2e"].startswith("n/a: ")


# --- TensorRT bookkeeping (runs without TensorRT: counts module classes by name) -----------------

def test_tensorrt_engines_are_counted_by_their_runtime_module_classes():
    from bench.deploy.tensorrt_mode import _engine_counts

    # Stand-ins named like Torch-TensorRT's runtime modules (one per engine), and a look-alike that
    # holds no engine. Real modules: fx keeps them as called submodules of the graph.
    class TorchTensorRTModule(nn.Module):
        def forward(self, x):
            return x * 2

    class PythonTorchTensorRTModule(TorchTensorRTModule):
        pass

    class TRTInterpreterResult(TorchTensorRTModule):
        pass

    class Split(nn.Module):
        def __init__(self):
            super().__init__()
            self._run_on_acc_0, self._run_on_acc_2 = TorchTensorRTModule(), PythonTorchTensorRTModule()
            self.other = TRTInterpreterResult()

        def forward(self, x):
            return self.other(self._run_on_acc_2(torch.relu(self._run_on_acc_0(x))))

    class KeepEngines(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, TorchTensorRTModule) or super().is_leaf_module(m, qualname)

    root = Split()
    compiled = torch.fx.GraphModule(root, KeepEngines().trace(root))
    counts = _engine_counts("tensorrt", compiled)
    assert counts == {"trt_engines_tensorrt": 2, "trt_torch_ops_tensorrt": 1}  # relu ran in PyTorch


def _ort_cuda() -> bool:
    try:
        import onnxruntime
    except ImportError:
        return False
    return torch.cuda.is_available() and "CUDAExecutionProvider" in onnxruntime.get_available_providers()


@pytest.mark.skipif(not _ort_cuda(), reason="needs CUDA and onnxruntime-gpu (pip install -e '.[onnx-gpu]')")
def test_onnxruntime_on_cuda_binds_device_memory_and_agrees_with_eager():
    row = deployment_row(tiny_cnn(), SHAPE, "cuda", check_images(), modes=("eager", "onnxruntime"), **FAST)
    assert row["provider_onnxruntime"] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")
    assert "latency_note_onnxruntime" not in row and row["latency_ms_b1_onnxruntime"] > 0
    assert row["agreement_onnxruntime"] == 1.0
