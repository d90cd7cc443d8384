"""Efficiency numbers recomputed by hand: parameter counts, MACs labelling, sizes, timing."""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn

from bench.evaluate.efficiency import (
    count_gmacs,
    count_params,
    eager_latency,
    efficiency_row,
    file_size_mb,
    state_dict_size_mb,
)
from bench.evaluate.timing import measure_latency, mode_latency

# Small counts everywhere: these tests check the plumbing and the arithmetic, not the machine.
FAST = dict(batch1_iters=3, batch1_warmup=1, throughput_batch=4, throughput_warmup=1,
            throughput_iters=2)

try:
    import fvcore  # noqa: F401

    HAVE_FVCORE = True
except ImportError:
    HAVE_FVCORE = False
needs_fvcore = pytest.mark.skipif(not HAVE_FVCORE, reason="fvcore not installed")


def tiny_model(in_ch: int = 3, size: int = 8) -> nn.Module:
    # Conv2d(3,4,3) on 8x8 -> 4x6x6 = 144 features -> Linear(144, 4).
    return nn.Sequential(nn.Conv2d(in_ch, 4, 3), nn.Flatten(), nn.Linear(4 * (size - 2) ** 2, 4))


def test_count_params_matches_hand_count():
    model = tiny_model()
    conv = 4 * 3 * 3 * 3 + 4  # weights + bias = 112
    linear = 144 * 4 + 4  # = 580
    assert count_params(model) == conv + linear == 692


def test_count_params_trainable_only_skips_frozen():
    model = tiny_model()
    model[0].requires_grad_(False)
    assert count_params(model, trainable_only=True) == 580
    assert count_params(model) == 692


def test_count_params_counts_a_shared_parameter_once():
    lin = nn.Linear(5, 5)
    assert count_params(nn.Sequential(lin, lin)) == 30


@needs_fvcore
def test_gmacs_of_conv_is_one_mac_per_multiply_add():
    gmacs, note = count_gmacs(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 32, 32))
    assert gmacs == 8 * 3 * 9 * 32 * 32 / 1e9
    assert note is None


@needs_fvcore
def test_gmacs_of_linear_is_in_times_out():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    gmacs, _ = count_gmacs(model, (1, 3, 4, 4))
    assert gmacs == 48 * 10 / 1e9


@needs_fvcore
def test_gmacs_of_resnet18_matches_published_value():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None)
    gmacs, note = count_gmacs(model, (1, 3, 224, 224))
    assert gmacs == pytest.approx(1.82, rel=0.02)
    # Residual adds and max-pooling carry no MACs formula in fvcore; they are named, not hidden.
    assert note is not None and "aten::max_pool2d" in note


@needs_fvcore
def test_gmacs_leaves_training_mode_as_it_was():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    count_gmacs(model, (1, 3, 8, 8))
    assert model.training


def test_gmacs_without_fvcore_is_none_with_reason(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_fvcore(name, *args, **kwargs):
        if name.startswith("fvcore"):
            raise ImportError("No module named 'fvcore'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fvcore)
    gmacs, note = count_gmacs(tiny_model(), (1, 3, 8, 8))
    assert gmacs is None
    assert "fvcore" in note


@needs_fvcore
def test_gmacs_of_untraceable_model_is_none_with_reason():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    gmacs, note = count_gmacs(Broken(), (1, 3, 8, 8))
    assert gmacs is None and "boom" in note


def test_input_shape_must_be_batch_one_nchw():
    with pytest.raises(ValueError):
        count_gmacs(tiny_model(), (3, 8, 8))


def test_file_size_is_decimal_megabytes(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\0" * 2_500_000)
    assert file_size_mb(path) == 2.5


def test_state_dict_size_is_close_to_raw_weight_bytes():
    model = nn.Linear(1000, 250)  # 250,250 float32 values = 1.001 MB
    raw_mb = 250_250 * 4 / 1e6
    size = state_dict_size_mb(model)
    assert raw_mb <= size < raw_mb + 0.01  # plus a small header


def test_measure_latency_of_a_2ms_sleep():
    stats = measure_latency(lambda: time.sleep(0.002), warmup=1, iters=10, device="cpu")
    assert 2.0 <= stats["median_ms"] <= 10.0
    assert stats["p90_ms"] >= stats["median_ms"]
    assert stats["std_ms"] >= 0.0
    assert stats["iters"] == 10


def test_measure_latency_keeps_going_until_min_time():
    stats = measure_latency(lambda: time.sleep(0.001), warmup=0, iters=2, min_time_s=0.05,
                            device="cpu")
    assert stats["iters"] > 2


def test_measure_latency_hard_cap_bounds_min_time_loop():
    stats = measure_latency(lambda: None, warmup=0, iters=1, min_time_s=3600, max_iters=20,
                            device="cpu")
    assert stats["iters"] == 20


def test_measure_latency_counts_warmup_separately():
    calls = []
    measure_latency(lambda: calls.append(1), warmup=4, iters=6, device="cpu")
    assert len(calls) == 10


def test_eager_latency_keys_present_and_positive_on_cpu():
    row = eager_latency(tiny_model(), (1, 3, 8, 8), "cpu", **FAST)
    assert set(row) == {
        "latency_ms_b1_eager",
        "latency_ms_b1_eager_p90",
        "latency_ms_b1_eager_std",
        "throughput_ips_b4_eager",
        "throughput_batch_eager",
    }
    assert row["latency_ms_b1_eager"] > 0
    assert row["latency_ms_b1_eager_p90"] >= row["latency_ms_b1_eager"]
    assert row["latency_ms_b1_eager_std"] >= 0
    assert row["throughput_ips_b4_eager"] > 0
    assert row["throughput_batch_eager"] == 4


def test_mode_latency_halves_batch_on_out_of_memory_and_keeps_key_name():
    seen = []

    def make_runner(batch):
        seen.append(batch)
        if batch > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return lambda: time.sleep(0.001 * batch / 16)

    row = mode_latency("fake", make_runner, "cpu", batch1_iters=2, batch1_warmup=0,
                       throughput_batch=64, throughput_warmup=0, throughput_iters=2)
    assert seen == [1, 64, 32, 16]
    assert row["throughput_batch_fake"] == 16
    # Named after the requested batch, valued at the batch that ran: ~16 images per ~1 ms.
    assert 1_000 < row["throughput_ips_b64_fake"] < 16_000
    assert "latency_ms_b1_fake" in row


def test_mode_latency_does_not_swallow_other_errors():
    def make_runner(batch):
        if batch > 1:
            raise ValueError("not an OOM")
        return lambda: None

    with pytest.raises(ValueError):
        mode_latency("fake", make_runner, "cpu", batch1_iters=1, throughput_iters=1)


def test_efficiency_row_end_to_end(tmp_path):
    model = tiny_model(in_ch=1)
    row = efficiency_row(model, (1, 1, 8, 8), "cpu", **FAST)
    conv = 4 * 1 * 9 + 4
    assert row["params"] == conv + 580
    assert row["params_trainable"] == row["params"]
    assert row["params_m"] == pytest.approx(row["params"] / 1e6)
    if HAVE_FVCORE:
        # conv: 4 out * 1 in * 9 taps * 36 positions; linear: 144 * 4.
        assert row["gmacs"] == pytest.approx((4 * 9 * 36 + 144 * 4) / 1e9)
    else:
        assert row["gmacs"] is None and row["gmacs_note"]
    assert row["size_mb"] >= row["params"] * 4 / 1e6
    assert row["latency_ms_b1_eager"] > 0 and row["throughput_ips_b4_eager"] > 0
    assert all(isinstance(v, (int, float, str, type(None))) for v in row.values())

    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"\0" * 1_234_000)
    assert efficiency_row(model, (1, 1, 8, 8), "cpu", ckpt, **FAST)["size_mb"] == 1.234


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_eager_latency_on_cuda_uses_events_and_reports_positive_numbers():
    row = eager_latency(tiny_model(), (1, 3, 8, 8), "cuda", **FAST)
    assert row["latency_ms_b1_eager"] > 0 and math.isfinite(row["throughput_ips_b4_eager"])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_cuda_latency_times_the_device_the_work_runs_on():
    # Work on cuda:1 while cuda:0 is current: events on cuda:0's idle stream would read ~0 ms.
    x = torch.randn(4096, 4096, device="cuda:1")

    def synchronized():
        x @ x
        torch.cuda.synchronize("cuda:1")

    host = measure_latency(synchronized, warmup=3, iters=10, device="cpu")  # the host clock, waiting
    events = measure_latency(lambda: x @ x, warmup=3, iters=10, device="cuda:1")
    assert events["median_ms"] > 0.5 * host["median_ms"]
