"""(a) The ceiling: the model alone, trained on one synthetic batch that is already on the device."""

from __future__ import annotations

import torch

from bench.data.batches import Normalizer
from bench.throughput.common import Pipeline, ThroughputSettings, Trainer


def model_only_pipeline(trainer: Trainer, normalize: Normalizer, in_channels: int, num_classes: int,
                        settings: ThroughputSettings) -> Pipeline:
    """Random uint8 pixels, scaled and normalized like real ones, made once; no data work per step."""
    device, size = trainer.device, settings.input_size
    generator = torch.Generator().manual_seed(settings.seed)
    pixels = torch.randint(0, 256, (settings.batch_size, in_channels, size, size), dtype=torch.uint8,
                           generator=generator)
    x = normalize(pixels.to(device).float().div_(255.0))
    if trainer.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (settings.batch_size,), generator=generator).to(device)
    return Pipeline("model_only", "(a) model only", lambda: trainer.step(x, y))
