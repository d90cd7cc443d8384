"""Deployment modes of a segmenter: the classifiers' modes (bench.deploy), checked by mask IoU.

A classifier's mode agrees with eager when it picks the same class; a segmenter's when it draws
the same mask. So the agreement of a mode is the mean per-slice IoU between its mask and eager's
on real test slices (both thresholded at probability 0.5, i.e. logit 0), flagged below the same
threshold the classifiers use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from bench.deploy import AGREEMENT_THRESHOLD, deployment_row
from bench.segmentation.metrics import mask_agreement


def mask_agreement_columns(mode: str, reference: torch.Tensor, logits: torch.Tensor) -> dict:
    """max_abs_diff_<mode>, agreement_<mode> (mean mask IoU against eager) and agreement_flag_<mode>."""
    if logits.shape != reference.shape:
        raise ValueError(f"{mode} returned masks of shape {tuple(logits.shape)}, eager {tuple(reference.shape)}")
    agreement = mask_agreement((logits[:, 0] > 0).numpy(), (reference[:, 0] > 0).numpy())
    return {f"max_abs_diff_{mode}": (logits - reference).abs().max().item(), f"agreement_{mode}": agreement,
            f"agreement_flag_{mode}": agreement < AGREEMENT_THRESHOLD}


# A 128 px U-Net's activations are many times a classifier's: 16 slices a batch, not 64.
THROUGHPUT_BATCH = 16


def segmentation_deployment_row(model: nn.Module, size: int, device: torch.device, check_inputs: torch.Tensor,
                                modes: Sequence[str], label: str) -> dict:
    """Latency, throughput and mask agreement per mode, at batch 1 and THROUGHPUT_BATCH."""
    return deployment_row(model, (1, 1, size, size), device, check_inputs, modes=modes,
                          throughput_batch=THROUGHPUT_BATCH,
                          check_batch=8, label=label, agreement=mask_agreement_columns)
