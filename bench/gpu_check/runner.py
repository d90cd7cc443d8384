"""Run named checks one by one, each in its own try/except and time limit, and say what passed.

A check is a function `check(ctx) -> dict` of measured numbers (plus an optional "detail" line).
It passes by returning, is "n/a" by raising NotApplicable, fails by raising CheckFailed or
anything else. A check that needs CUDA is "n/a: needs CUDA" on a CPU device without being called.

Time: every check has a budget per device type and the whole run one more; a check past its
budget is interrupted (SIGALRM) and fails, and a check that would start with less time left than
MIN_START_S is not started and fails, so that a run on a lent machine never silently runs long.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

PASS, FAIL, NA = "pass", "fail", "n/a"
MIN_START_S = 5.0  # with less of the run's budget left, starting a check would only produce a timeout
TRACEBACK_LINES = 25  # the end of a failure's traceback goes into the JSON: on a lent machine it is all we get


class NotApplicable(Exception):
    """The check cannot run here for a known reason; its message follows 'n/a: ' in the detail."""

    def __init__(self, reason: str, measured: dict | None = None):
        super().__init__(reason)
        self.measured = measured or {}


class CheckFailed(Exception):
    """The check ran and what it measured is wrong; the message is the detail."""

    def __init__(self, reason: str, measured: dict | None = None):
        super().__init__(reason)
        self.measured = measured or {}


class CheckTimeout(BaseException):
    """Raised into a check that ran past its budget. A BaseException, so that code under test which
    turns every Exception into a result (a deployment mode's note) cannot swallow it."""


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[..., dict]
    budget_s: dict[str, float]  # per device type: {"cpu": ..., "cuda": ...}
    needs_cuda: bool = False
    what: str = ""  # one line for --help and the report

    def budget_for(self, device_type: str) -> float:
        return self.budget_s[device_type]


@dataclass
class RunBudget:
    """The whole run's deadline; each check gets the smaller of its own budget and what is left."""
    total_s: float
    started: float = field(default_factory=time.perf_counter)

    def left_s(self) -> float:
        return self.total_s - (time.perf_counter() - self.started)


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def describe_error(error: BaseException) -> str:
    text = first_line(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """CheckTimeout inside the block once `seconds` have passed. Signals reach the main thread only;
    elsewhere (or without SIGALRM) the block runs unlimited and the run budget still stops the next check."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def interrupt(signum, frame) -> None:
        raise CheckTimeout()

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _result(status: str, detail: str, seconds: float, measured: dict | None = None, **extra) -> dict:
    return {"status": status, "detail": detail, "seconds": round(seconds, 2), **extra, **(measured or {})}


def _release_device_memory(device: torch.device) -> None:
    """Between checks: what one check compiled or cached must not change the next one's numbers."""
    torch.compiler.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_one(check: Check, ctx, budget: RunBudget) -> dict:
    """The check's result; never raises (except KeyboardInterrupt, which ends the run)."""
    if check.needs_cuda and ctx.device.type != "cuda":
        return _result(NA, "n/a: needs CUDA", 0.0)
    left = budget.left_s()
    if left < MIN_START_S:
        return _result(FAIL, f"not run: {max(left, 0):.0f} s left of the run's {budget.total_s:g} s budget", 0.0)
    limit = min(check.budget_for(ctx.device.type), left)
    started = time.perf_counter()
    try:
        with time_limit(limit):
            measured = dict(check.run(ctx))
        status, detail = PASS, str(measured.pop("detail", ""))
    except NotApplicable as error:
        status, detail, measured = NA, f"n/a: {error}", error.measured
    except CheckFailed as error:
        status, detail, measured = FAIL, str(error), error.measured
    except CheckTimeout:
        status, detail, measured = FAIL, f"over its time budget of {limit:g} s", {}
    except Exception as error:  # noqa: BLE001 - a broken path is the result this tool exists to report
        status, detail = FAIL, describe_error(error)
        lines = traceback.format_exception(error)
        measured = {"traceback": "".join(lines).splitlines()[-TRACEBACK_LINES:]}
    finally:
        with contextlib.suppress(Exception):
            _release_device_memory(ctx.device)
    return _result(status, detail, time.perf_counter() - started, measured, budget_s=round(limit, 1))


def run_checks(checks: Sequence[Check], ctx, budget: RunBudget,
               on_result: Callable[[str, dict], None] = lambda name, result: None) -> dict[str, dict]:
    """Every check's result by name, in order; `on_result` after each (to print and save progress)."""
    results: dict[str, dict] = {}
    for check in checks:
        results[check.name] = run_one(check, ctx, budget)
        on_result(check.name, results[check.name])
    return results


def summary(results: dict[str, dict]) -> dict[str, int]:
    counts = {PASS: 0, FAIL: 0, NA: 0}
    for result in results.values():
        counts[result["status"]] += 1
    return counts


def table_line(name: str, result: dict, width: int = 36) -> str:
    return f"{name:<{width}} {result['status']:<6} {result['seconds']:>7.1f} s  {result['detail']}"


def table(results: dict[str, dict]) -> str:
    width = max([len(name) for name in results] + [5])
    header = f"{'check':<{width}} {'status':<6} {'time':>9}  detail"
    return "\n".join([header, *(table_line(name, r, width) for name, r in results.items())])
