"""Choosing the device a run uses."""

from __future__ import annotations

import torch

from bench.errors import BrainbenchError


def resolve_device(name: str | None = None) -> torch.device:
    """'cuda' when one is available and nothing was asked; a clear error when CUDA is asked but absent."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):  # torch's message for "tpu" or "" is a long list of backends
        raise BrainbenchError(f"--device {name!r}: not a device; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise BrainbenchError(f"--device {name}: brainbench runs on cpu or cuda[:N], not {device.type}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BrainbenchError(f"--device {name}: no CUDA device is available here (torch {torch.__version__})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise BrainbenchError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"numbered from 0")
    return device
