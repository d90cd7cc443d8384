"""Options, parametrization and machine info for the latency benchmarks in bench/ (pytest-benchmark).

`pytest bench --benchmark-only` times them. pytest reads `pytest_addoption` only from initial
conftests (the rootdir's and those beside the paths on the command line), so the `--bb-*`
options exist when `bench` (or a file in it) is named on the command line; plain `pytest` runs
tests/ only, never loads this file, and so never times anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import pytest
import torch

import zoo
from bench.environment import cpu_name

BENCHMARK_MODES = ("eager", "torchscript")  # what the latency benchmarks time
ENTRIES_ENV = "BRAINBENCH_BENCH_ENTRIES"
# Small on purpose: the default run must finish in a few minutes on a 2-core CPU.
DEFAULT_ENTRIES = "cnn1.scratch,resnet18.scratch"
DEFAULT_BENCHMARK_MODES = "eager,torchscript"
DEFAULT_BATCHES = "1,32"
DEFAULT_SIZE = "64"


@dataclass(frozen=True)
class Selection:
    entries: tuple[str, ...]
    modes: tuple[str, ...]
    batches: tuple[int, ...]
    size: int | None  # None: each entry's own input size


_SELECTION = pytest.StashKey[Selection]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("brainbench latency", "brainbench latency benchmarks (pytest bench --benchmark-only)")
    group.addoption("--bb-entries", default=None, metavar="PATTERN",
                    help="zoo entries, comma-separated names or shell patterns ('resnet*,cnn?.scratch'); "
                         f"default ${ENTRIES_ENV}, else {DEFAULT_ENTRIES}")
    group.addoption("--bb-modes", default=DEFAULT_BENCHMARK_MODES, metavar="LIST",
                    help=f"execution modes, comma-separated, from {', '.join(BENCHMARK_MODES)}; default %(default)s")
    group.addoption("--bb-batches", default=DEFAULT_BATCHES, metavar="LIST",
                    help="batch sizes, comma-separated; default %(default)s")
    group.addoption("--bb-size", default=DEFAULT_SIZE, metavar="PX|entry",
                    help="input side in pixels, or 'entry' for each entry's own input size; default %(default)s")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _option(config: pytest.Config, name: str, default: str) -> str:
    # The options are missing when this conftest was not an initial one (e.g. `pytest .`):
    # fall back to the defaults rather than crash on collection.
    value = config.getoption(name, default=None)
    return default if value is None else value


def _parse_selection(config: pytest.Config) -> Selection:
    patterns = _split(_option(config, "bb_entries", os.environ.get(ENTRIES_ENV) or DEFAULT_ENTRIES))
    names: list[str] = []
    for pattern in patterns:
        matched = zoo.names(pattern)
        if not matched:
            raise pytest.UsageError(f"--bb-entries: {pattern!r} matches no zoo entry (`brainbench list` shows them)")
        names += [name for name in matched if name not in names]

    modes = _split(_option(config, "bb_modes", DEFAULT_BENCHMARK_MODES))
    unknown = [mode for mode in modes if mode not in BENCHMARK_MODES]
    if unknown or not modes:
        raise pytest.UsageError(f"--bb-modes: unknown mode(s) {unknown}; choose from {', '.join(BENCHMARK_MODES)}")

    try:
        batches = [int(b) for b in _split(_option(config, "bb_batches", DEFAULT_BATCHES))]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise pytest.UsageError("--bb-batches: give positive integers, comma-separated (e.g. 1,32)")

    size_text = _option(config, "bb_size", DEFAULT_SIZE).strip()
    if size_text == "entry":
        size = None
    elif size_text.isdigit() and int(size_text) > 0:
        size = int(size_text)
    else:
        raise pytest.UsageError(f"--bb-size: a positive number of pixels or 'entry', got {size_text!r}")
    return Selection(tuple(names), tuple(modes), tuple(batches), size)


def pytest_configure(config: pytest.Config) -> None:
    # Parsed here so a typo is one clean usage error before anything is built.
    config.stash[_SELECTION] = _parse_selection(config)
    # `pytest bench` without --benchmark-only: run every case once, untimed. It still builds,
    # traces and checks each mode against eager, so it is a quick smoke test; a timing is only
    # worth keeping from a quiet machine, so it is asked for explicitly (--benchmark-only, or
    # --benchmark-enable to time alongside other tests). pytest-benchmark reads this
    # option in its own pytest_configure, which is `trylast`, so it sees our change.
    option = config.option
    if (hasattr(option, "benchmark_only") and not option.benchmark_only
            and not option.benchmark_enable and not option.benchmark_skip):
        option.benchmark_disable = True


def pytest_report_header(config: pytest.Config) -> list[str]:
    sel = config.stash[_SELECTION]
    timed = "timed" if getattr(config.option, "benchmark_only", False) else \
        "NOT timed (each case runs once; pass --benchmark-only to time them)"
    size = "entry's own" if sel.size is None else f"{sel.size} px"
    return [f"brainbench latency: {timed}",
            f"  entries {', '.join(sel.entries)}; modes {', '.join(sel.modes)}; "
            f"batches {', '.join(map(str, sel.batches))}; size {size}; torch threads {torch.get_num_threads()}"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bb_case" not in metafunc.fixturenames:
        return
    sel = metafunc.config.stash[_SELECTION]
    cases, ids = [], []
    for name in sel.entries:
        size = sel.size or zoo.get(name).input_size
        for batch in sel.batches:
            for mode in sel.modes:
                cases.append((name, size, batch, mode))
                # The size is part of the id: `--benchmark-compare` matches benchmarks by name,
                # and a 64 px time must never be compared with a 224 px one.
                ids.append(f"{name}-{size}px-b{batch}-{mode}")
    metafunc.parametrize("bb_case", cases, ids=ids)


def _nvidia_driver() -> str | None:
    """The NVIDIA driver version; torch does not expose it, nvidia-smi does."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


# optionalhook: without pytest-benchmark this hook has no spec, and pytest would reject the file.
@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    # pytest-benchmark warns on --benchmark-compare when machine_info differs, so everything that
    # moves a latency number belongs here: GPU and driver, torch/CUDA builds, CPU and its threads.
    cuda = torch.cuda.is_available()
    machine_info["brainbench"] = {
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "nvidia_driver": _nvidia_driver() if cuda else None,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,  # the CUDA torch was built with (set even without a GPU)
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
    }
