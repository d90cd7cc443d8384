"""Deployment modes: `error` (a failure) never reads as `n/a` (an expected absence), every mode
runs or is unavailable on the CPU, compiled modes never compile inside a timed call, and an
entry's unavailable modes make one quiet log line."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import nn

import zoo
from bench import jit_deprecation
from bench.deploy import DEFAULT_MODES, MODES, ModeUnavailable, Prepared, deployment_row
from bench.mode_notes import ERROR, NA, note_status

FAST = dict(batch1_warmup=1, batch1_iters=2, throughput_warmup=1, throughput_iters=1, throughput_batch=4)
SIZE = 32


def cnn0() -> tuple[nn.Module, tuple[int, int, int, int]]:
    entry = zoo.get("cnn0.scratch")
    torch.manual_seed(0)
    return entry.build(input_size=SIZE, pretrained=False), (1, entry.in_channels, SIZE, SIZE)


def images(shape: tuple[int, ...], n: int = 8) -> torch.Tensor:
    return torch.randn((n, *shape[1:]), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def every_mode_row() -> dict:
    """Every mode once for cnn0.scratch at 32 px (torch.compile takes most of the time)."""
    model, shape = cnn0()
    return deployment_row(model, shape, "cpu", images(shape), modes=DEFAULT_MODES, **FAST)


def test_no_mode_fails_on_the_cpu_for_a_small_model(every_mode_row):
    notes = {mode: every_mode_row.get(f"latency_note_{mode}") for mode in DEFAULT_MODES}
    errors = {mode: note for mode, note in notes.items() if str(note).startswith("error")}
    assert not errors, f"modes that failed instead of running or being unavailable: {errors}"
    for mode, note in notes.items():  # each one ran, or says why it cannot run here
        assert note is None and every_mode_row[f"latency_ms_b1_{mode}"] > 0 or note_status(note) == NA


def test_compile_time_is_recorded_per_batch_and_never_timed(every_mode_row):
    if every_mode_row.get("latency_note_compile"):
        pytest.skip(f"compile cannot run here: {every_mode_row['latency_note_compile']}")
    b1, b4 = every_mode_row["compile_s_b1_compile"], every_mode_row["compile_s_b4_compile"]
    # Batch 4 was compiled (as its own static graph) before any timed call, not in the warm-up.
    assert b1 > 0 and b4 > 0
    assert every_mode_row["compile_s_compile"] == pytest.approx(b1 + b4)


def test_a_recompilation_inside_the_timed_calls_is_an_error():
    # A torch.compile'd forward (the real dynamo, with its cheapest backend) that is never compiled
    # for batch 4 ahead of time: the throughput batch would recompile while being timed.
    from bench.deploy.torch_modes import no_recompilation

    def prepare(model, example, device, max_batch):
        torch._dynamo.reset()
        compiled = torch.compile(model, backend="eager", dynamic=False)
        compiled(example)
        return Prepared(forward=compiled, timing_context=no_recompilation, release=torch._dynamo.reset)

    model, shape = cnn0()
    row = deployment_row(model, shape, "cpu", None, modes=("eager", "lazy"),
                         registry={"eager": MODES["eager"], "lazy": prepare}, **FAST)
    assert note_status(row["latency_note_lazy"]) == ERROR
    assert "Recompile" in row["latency_note_lazy"]


# --- error versus n/a ---------------------------------------------------------------------------

def raising(exc: BaseException):
    def prepare(model, example, device, max_batch):
        raise exc
    return prepare


def failing_forward(model, example, device, max_batch):
    def forward(x):
        if x.shape[0] > 1:
            raise ValueError("batch too large for this engine\nmore detail")
        return model(x)
    return Prepared(forward=forward)


def test_an_exception_inside_a_mode_is_an_error_not_na():
    model, shape = cnn0()
    registry = {"eager": MODES["eager"], "broken": raising(RuntimeError("exporter broke\nlong traceback")),
                "absent": raising(ModeUnavailable("no CUDA device")), "late": failing_forward}
    row = deployment_row(model, shape, "cpu", None, modes=tuple(registry), registry=registry, **FAST)
    assert row["latency_note_broken"] == "error: RuntimeError: exporter broke"
    assert row["latency_note_late"] == "error: ValueError: batch too large for this engine"
    assert row["latency_note_absent"] == "n/a: no CUDA device"
    assert "latency_note_eager" not in row


def test_eager_failing_on_the_check_images_is_an_error_for_every_mode():
    class Refuses(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    row = deployment_row(Refuses(), (1, 1, 8, 8), "cpu", torch.zeros(2, 1, 8, 8), modes=("eager", "torchscript"),
                         **FAST)
    for mode in ("eager", "torchscript"):
        assert row[f"latency_note_{mode}"] == "error: eager failed on the check images: RuntimeError: boom"


def test_the_leaderboard_tells_error_from_na():
    from bench.report.modes import mode_status
    from bench.report.tables import latency_tables

    row = {"entry": "a", "status": "ok", "latency_ms_b1_eager": 2.0, "latency_ms_b1_tensorrt": None,
           "latency_note_tensorrt": "n/a: no CUDA device", "latency_ms_b1_onnxruntime": None,
           "latency_note_onnxruntime": "error: RuntimeError: exporter broke"}
    assert [mode_status(row, m) for m in ("eager", "tensorrt", "onnxruntime", "compile")] == \
        ["ok", NA, ERROR, None]
    tables = {mode: body for mode, _, body in latency_tables([row])}
    assert "error: RuntimeError: exporter broke" in tables["onnxruntime"][0][1]
    assert tables["tensorrt"][0][1] == "n/a: no CUDA device"


# --- quieter runs --------------------------------------------------------------------------------

def test_unavailable_modes_make_one_log_line_grouped_by_reason(caplog):
    model, shape = cnn0()
    registry = {"eager": MODES["eager"], "fp16": raising(ModeUnavailable("no CUDA device")),
                "trt": raising(ModeUnavailable("no CUDA device")),
                "ort": raising(ModeUnavailable("onnxruntime not installed"))}
    with caplog.at_level(logging.INFO, logger="bench.deploy"):
        deployment_row(model, shape, "cpu", None, modes=tuple(registry), registry=registry, label="cnn0.scratch",
                       **FAST)
    lines = [r.getMessage() for r in caplog.records if "not available" in r.getMessage()]
    assert lines == [("cnn0.scratch: deployment modes not available here: fp16, trt (no CUDA device); "
                      "ort (onnxruntime not installed)")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_torchscript_deprecation_warnings_appear_once_per_process(monkeypatch, caplog):
    monkeypatch.setattr(jit_deprecation, "_shown", set())  # as in a fresh process
    model, shape = cnn0()
    with warnings.catch_warnings(record=True) as seen, caplog.at_level(logging.INFO, logger="bench.jit_deprecation"):
        warnings.simplefilter("always")
        for _ in range(3):
            prepared = MODES["torchscript"](model.eval(), torch.zeros(shape), torch.device("cpu"), 4)
    deprecations = [str(w.message) for w in seen if jit_deprecation.is_jit_deprecation(w)]
    assert deprecations and len(deprecations) == len(set(deprecations))  # each message once, not thrice
    notes = [r for r in caplog.records if "TorchScript" in r.getMessage() and "deprecated upstream" in r.getMessage()]
    assert len(notes) == 1
    # The row still names the deprecation, every time.
    assert "deprecated" in prepared.extra["deploy_warning_torchscript"]
