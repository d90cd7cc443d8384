"""The GPU self-check: its CPU-reachable checks pass for real here, and the runner reports what breaks."""

import json
import time

import pytest
import torch

from bench.gpu_check.checks import CHECKS
from bench.gpu_check.cli import main, run_gpu_check
from bench.gpu_check.context import CheckContext
from bench.gpu_check.runner import FAIL, NA, PASS, Check, RunBudget, run_checks

CPU = torch.device("cpu")
CUDA_ONLY = {check.name for check in CHECKS if check.needs_cuda}


@pytest.mark.slow
def test_every_cpu_reachable_check_passes_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "report" / "gpu_check.json"
    assert main(["--device", "cpu", "--out", str(out)]) == 0

    report = json.loads(out.read_text())
    checks = report["checks"]
    assert list(checks) == [check.name for check in CHECKS] and report["complete"]
    assert report["environment"]["device"] == "cpu" and report["environment"]["torch"] == torch.__version__
    assert not [name for name, result in checks.items() if result["status"] == FAIL], checks
    for name in CUDA_ONLY:
        assert checks[name]["status"] == NA and checks[name]["detail"] == "n/a: needs CUDA"
    assert all(checks[name]["status"] == PASS for name in checks if name not in CUDA_ONLY)
    # The CUDA-only deployment modes are named with their reason, never dropped.
    modes = checks["deployment_modes"]["modes"]
    assert modes["eager_fp16"] == "n/a: no CUDA device" and isinstance(modes["torchscript"], float)
    assert checks["resume_cuda_rng"]["max_abs_difference"] == 0.0
    table = capsys.readouterr().out
    assert all(name in table for name in checks) and "written:" in table


def broken(ctx) -> dict:
    raise RuntimeError("the first line says what broke\nand the second line stays out of the table")


def fine(ctx) -> dict:
    return {"detail": "ran", "value": 1.5}


def test_a_check_that_raises_fails_with_its_first_line_and_the_run_goes_on(tmp_path):
    checks = [Check("broken", broken, {"cpu": 10, "cuda": 10}), Check("fine", fine, {"cpu": 10, "cuda": 10}),
              Check("cuda_only", fine, {"cpu": 10, "cuda": 10}, needs_cuda=True)]
    out = tmp_path / "gpu_check.json"
    assert run_gpu_check(CPU, out, checks, budget_s=30) == 1

    results = json.loads(out.read_text())["checks"]
    assert results["broken"]["status"] == FAIL
    assert results["broken"]["detail"] == "RuntimeError: the first line says what broke"
    assert any("the first line says what broke" in line for line in results["broken"]["traceback"])
    assert results["fine"] | {"seconds": 0} == {"status": PASS, "detail": "ran", "seconds": 0, "budget_s": 10,
                                               "value": 1.5}
    assert results["cuda_only"]["status"] == NA and results["cuda_only"]["detail"] == "n/a: needs CUDA"


def test_a_check_past_its_budget_is_stopped_and_a_spent_run_starts_no_more(tmp_path):
    def slow(ctx) -> dict:
        time.sleep(30)
        return {}

    ctx = CheckContext(device=CPU, work_dir=tmp_path)
    started = time.perf_counter()
    results = run_checks([Check("slow", slow, {"cpu": 0.5, "cuda": 0.5})], ctx, RunBudget(60))
    assert time.perf_counter() - started < 10
    assert results["slow"]["status"] == FAIL and results["slow"]["detail"] == "over its time budget of 0.5 s"

    spent = run_checks([Check("fine", fine, {"cpu": 10, "cuda": 10})], ctx, RunBudget(1))
    assert spent["fine"]["status"] == FAIL and spent["fine"]["detail"].startswith("not run: ")


def test_unknown_check_names_are_refused(tmp_path, capsys):
    assert main(["--device", "cpu", "--only", "train_bf16,nope", "--out", str(tmp_path / "x.json")]) == 2
    assert "unknown check(s) nope" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
