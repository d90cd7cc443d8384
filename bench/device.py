"""Choosing the device a run uses."""

from __future__ import annotations

import torch

from bench.errors import BrainbenchError


def resolve_device(name: str | None = None) -> torch.device:
    """'cuda' when one is available and nothing was asked; a clear error when CUDA is asked but absent."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BrainbenchError(f"--device {name}: no CUDA device is available here (torch {torch.__version__})")
    return device
