"""One pass of a model over a decoded split: logits, in order, without augmentation."""

from __future__ import annotations

import torch
from torch import nn

from bench.data.batches import Normalizer, batch_indices, to_model_input


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor, normalize: Normalizer, *, batch_size: int = 128,
                   channels_last: bool = False, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Logits (N, K) as float32 on the CPU for uint8 images (N, C, H, W)."""
    model.eval()
    device = normalize.mean.device
    outputs = []
    for idx in batch_indices(len(images), batch_size, shuffle=False):
        x = to_model_input(images[idx], normalize, channels_last=channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            outputs.append(model(x).float().cpu())
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)
