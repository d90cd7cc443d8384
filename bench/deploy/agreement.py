"""Does a compiled mode still compute the model? Its outputs against eager's on real images."""

from __future__ import annotations

from typing import Any, Callable

import torch

# Below this share of identical top-1 predictions the leaderboard flags the mode: a faster
# number is worth nothing if the model answers differently. 0.995 lets fp16 rounding flip a
# near-tie now and then on a few hundred images, not a systematic error.
AGREEMENT_THRESHOLD = 0.995


def chunked_logits(forward: Callable[[Any], torch.Tensor], convert: Callable[[torch.Tensor], Any],
                   images: torch.Tensor, chunk: int) -> torch.Tensor:
    """forward over `images` in chunks of at most `chunk` (a compiled engine has a maximum batch),
    as float32 on the CPU."""
    outs = [forward(convert(images[i:i + chunk])).float().cpu() for i in range(0, len(images), chunk)]
    return torch.cat(outs)


def agreement_columns(mode: str, reference: torch.Tensor, logits: torch.Tensor) -> dict:
    """max_abs_diff_<mode>, agreement_<mode> (top-1 share) and agreement_flag_<mode>."""
    if logits.shape != reference.shape:
        raise ValueError(f"{mode} returned logits of shape {tuple(logits.shape)}, "
                         f"eager {tuple(reference.shape)}")
    agreement = (logits.argmax(1) == reference.argmax(1)).float().mean().item()
    return {
        f"max_abs_diff_{mode}": (logits - reference).abs().max().item(),
        f"agreement_{mode}": agreement,
        f"agreement_flag_{mode}": agreement < AGREEMENT_THRESHOLD,
    }
