"""The latency benchmark's eager check (bench/test_latency.py) runs in IEEE fp32 on CUDA: TF32 is
off inside it and the machine's settings are back after it. Only the flags are checked here; the
flags exist (and are settable) on a CPU-only build too."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("pytest_benchmark")
from bench.test_latency import full_fp32


def tf32_flags() -> tuple:
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        return torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


def test_the_check_turns_tf32_off_on_cuda_and_restores_it():
    before = tf32_flags()
    with full_fp32(torch.device("cuda")):
        assert tf32_flags() in (("ieee", "ieee"), (False, False))
    assert tf32_flags() == before


def test_the_check_leaves_the_cpu_alone():
    before = tf32_flags()
    with full_fp32(torch.device("cpu")):
        assert tf32_flags() == before
