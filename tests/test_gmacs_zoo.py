"""Every zoo entry's GMACs (fvcore, what the leaderboard shows) against torch's own FLOP counter.

torch.utils.flop_counter.FlopCounterMode counts the matmul-class operators (convolution, mm,
addmm, bmm, attention) in FLOPs, two per multiply-add, and nothing else. fvcore counts the same
operators in MACs, plus a few element-wise ones. So the comparison has two parts:

- the matmul-class part must agree EXACTLY with half of FlopCounterMode's FLOPs: both use one
  multiply-add per output element per reduction step and neither counts biases, so any
  difference is an operator one of them missed (attention, before its fvcore handler);
- the whole GMACs figure may exceed that by what fvcore alone counts: batch and layer norms (one
  or two per element) and adaptive average pooling. Measured at each architecture's smallest
  size these are 0 to 3.1 % of the total, the most for MobileNetV2, whose depthwise 3x3
  convolutions do 9 MACs per output next to batch norm's 1; hence TOTAL_TOLERANCE.

Each architecture runs at the smallest input size it supports (the MAC formulas do not depend on
the size), on the CPU, once per distinct (architecture, input channels): scratch and mocov2
variants share one model. About 20 s in all on a 2-core CPU.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import zoo
from bench.evaluate.efficiency import count_gmacs, macs_by_operator

pytest.importorskip("fvcore")

# fvcore's names (by_operator) of the operators FlopCounterMode also counts.
MATMUL_CLASS = frozenset({"conv", "linear", "addmm", "mm", "bmm", "matmul", "einsum",
                          "scaled_dot_product_attention"})
TOTAL_TOLERANCE = 0.04  # fvcore's norms and pooling: at most 3.1 % of any zoo entry's total
CANDIDATE_SIZES = range(16, 257, 16)  # multiples of 16: ViTs cut 16 px patches


@dataclass(frozen=True)
class Counts:
    size: int
    gmacs: float | None
    gmacs_note: str | None
    fvcore_by_operator: dict
    torch_macs: int  # FlopCounterMode's FLOPs / 2


def torch_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    # The math backend: the fused CPU attention kernel has no FlopCounterMode formula, its math
    # form is two bmm calls, which FlopCounterMode does count.
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        model(x)
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2


@functools.cache
def counts(arch: str, in_channels: int) -> Counts:
    """Built untrained at the smallest size that builds and runs."""
    entry = next(zoo.get(n) for n in zoo.names() if n.startswith(f"{arch}.") and zoo.get(n).in_channels == in_channels)
    for size in CANDIDATE_SIZES:
        torch.manual_seed(0)
        try:
            model = entry.build(input_size=size, pretrained=False).eval()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reference = torch_macs(model, torch.zeros(1, in_channels, size, size))
        except (ValueError, RuntimeError):  # too small: the builder refuses or a feature map empties
            continue
        shape = (1, in_channels, size, size)
        by_operator, _ = macs_by_operator(model, shape)
        gmacs, note = count_gmacs(model, shape)
        return Counts(size, gmacs, note, dict(by_operator), reference)
    raise AssertionError(f"{entry.name} runs at none of {list(CANDIDATE_SIZES)} px")


@pytest.mark.parametrize("name", zoo.names())
def test_gmacs_agree_with_torch_flop_counter(name):
    entry = zoo.get(name)
    if entry.variant == "pixels":
        pytest.skip("non-neural reference (nearest neighbour on raw pixels): its cost is a search over the "
                    "fitted training images, which an untrained build does not hold")
    found = counts(entry.arch, entry.in_channels)
    matmul_class = sum(v for op, v in found.fvcore_by_operator.items() if op in MATMUL_CLASS)
    assert matmul_class == found.torch_macs, (
        f"{name} at {found.size} px: fvcore {matmul_class} MACs in matmul-class ops, FlopCounterMode "
        f"{found.torch_macs}; fvcore by operator {found.fvcore_by_operator}, skipped: {found.gmacs_note}")
    assert found.gmacs * 1e9 == pytest.approx(sum(found.fvcore_by_operator.values()))
    assert math.isclose(found.gmacs * 1e9, found.torch_macs, rel_tol=TOTAL_TOLERANCE)


def test_attention_is_two_matmuls_of_macs():
    # One image, 3 heads, 5 queries, 7 keys, depth 8, values 4 wide: Q·Kᵀ is 3*5*7*8 MACs and
    # softmax·V 3*5*7*4.
    class Attention(torch.nn.Module):
        def forward(self, x):
            q, k, v = x[..., :5, :8], x[..., :7, 8:16], x[..., :7, 16:20]
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    by_operator, unsupported = macs_by_operator(Attention(), (1, 3, 7, 20))
    assert by_operator["scaled_dot_product_attention"] == 1 * 3 * 5 * 7 * (8 + 4)
    assert "aten::scaled_dot_product_attention" not in unsupported
