"""The command line of `python -m bench.gpu_check`: choose checks, run them, print the table, write the JSON.

The JSON is rewritten after every check (atomically), so a run killed by an outer timeout still
leaves what it had validated, marked "complete": false.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from bench.device import resolve_device
from bench.environment import environment
from bench.errors import BrainbenchError
from bench.gpu_check.checks import CHECKS, NAMES
from bench.gpu_check.context import CheckContext
from bench.gpu_check.runner import (
    FAIL,
    Check,
    RunBudget,
    run_checks,
    summary,
    table,
    table_line,
)
from bench.io import write_text_atomically

NAME = "gpu_check"
# The whole run, checks only (imports and CUDA start come before): under scripts/gpu_check.sh's
# `timeout 470` on CUDA with room to spare; on a 2-core CPU the CPU-reachable subset takes about a minute.
DEFAULT_BUDGET_S = {"cuda": 420.0, "cpu": 150.0}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu_check",
        description="Validate brainbench's CUDA paths on the embedded mini dataset; on a CPU, run what can run "
                    "there. Checks: " + "; ".join(f"{c.name}: {c.what}" for c in CHECKS))
    parser.add_argument("--device", help="cuda, cuda:N or cpu (default: cuda when available)")
    parser.add_argument("--out", default="gpu_check.json", help="the JSON report (default: %(default)s)")
    parser.add_argument("--only", help=f"comma-separated check names, of: {', '.join(NAMES)}")
    parser.add_argument("--budget-s", type=float,
                        help=f"time budget of the whole run in seconds (default {DEFAULT_BUDGET_S['cuda']:g} on "
                             f"CUDA, {DEFAULT_BUDGET_S['cpu']:g} on the CPU)")
    parser.add_argument("--work-dir", help="where the checks' stores go (default: a temporary folder, removed after)")
    return parser.parse_args(argv)


def select(checks: Sequence[Check], only: str | None) -> list[Check]:
    if not only:
        return list(checks)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    known = {check.name for check in checks}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise BrainbenchError(f"--only: unknown check(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return [check for check in checks if check.name in wanted]


def report(device: torch.device, env: dict, results: dict, budget: RunBudget, complete: bool) -> dict:
    return {"name": NAME, "device": str(device), "complete": complete, "summary": summary(results),
            "seconds": round(time.perf_counter() - budget.started, 1), "budget_s": budget.total_s,
            "environment": env, "checks": results}


def write_report(out: Path, content: dict) -> None:
    write_text_atomically(out, json.dumps(content, indent=2, default=str) + "\n")


def run_gpu_check(device: torch.device, out: Path, checks: Sequence[Check], budget_s: float,
                  work_dir: Path | None = None) -> int:
    """Run `checks`, print and write what they found; 0 if none failed, else 1."""
    env = environment(device)
    budget = RunBudget(budget_s)
    own_work_dir = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="brainbench-gpu-check-")) if own_work_dir else Path(work_dir)
    ctx = CheckContext(device=device, work_dir=work)
    print(f"{NAME} on {device} ({env['device_name']}, torch {env['torch']}): {len(checks)} checks, "
          f"budget {budget_s:g} s", flush=True)

    done: dict[str, dict] = {}

    def progress(name: str, result: dict) -> None:
        done[name] = result
        print(table_line(name, result), flush=True)
        write_report(out, report(device, env, done, budget, complete=False))

    try:
        results = run_checks(checks, ctx, budget, on_result=progress)
    finally:
        if own_work_dir:
            shutil.rmtree(work, ignore_errors=True)
    write_report(out, report(device, env, results, budget, complete=True))
    counts = summary(results)
    print(f"\n{table(results)}\n\n{counts['pass']} passed, {counts[FAIL]} failed, {counts['n/a']} n/a "
          f"in {time.perf_counter() - budget.started:.0f} s; written: {out}", flush=True)
    return 1 if counts[FAIL] else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
        checks = select(CHECKS, args.only)
    except BrainbenchError as error:
        print(f"{NAME}: error: {error}", file=sys.stderr)
        return 2
    budget_s = args.budget_s if args.budget_s is not None else DEFAULT_BUDGET_S[device.type]
    return run_gpu_check(device, Path(args.out), checks, budget_s, Path(args.work_dir) if args.work_dir else None)
