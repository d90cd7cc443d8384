"""(b) brainbench's pipeline: the decoded uint8 cache held on the device, sliced and augmented in batch."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from bench.data.augment import AugmentPolicy
from bench.data.batches import Normalizer, batch_indices, to_model_input
from bench.data.cache import DecodedSplit
from bench.throughput.common import Pipeline, ThroughputSettings, Trainer


def cached_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, normalize: Normalizer, *,
                   policy: AugmentPolicy, generator: torch.Generator,
                   channels_last: bool) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled epochs of (input, label) batches, dropping each epoch's ragged last batch.

    `images` and `labels` live on the device already; only the batch's indices travel there, and
    without waiting (a blocking copy would make the host wait for the previous step's kernels).
    """
    while True:
        for idx in batch_indices(len(images), batch_size, shuffle=True, generator=generator, drop_last=True):
            idx = idx.to(images.device, non_blocking=True)
            x = to_model_input(images[idx], normalize, policy=policy, generator=generator, channels_last=channels_last)
            yield x, labels[idx]


def cached_pipeline(trainer: Trainer, train: DecodedSplit, normalize: Normalizer, policy: AugmentPolicy,
                    settings: ThroughputSettings) -> Pipeline:
    device = trainer.device
    images = train.images.to(device)  # once, as a GPU run holds its cache
    labels = train.labels.to(device)
    generator = torch.Generator().manual_seed(settings.seed)  # shuffling and augmentation draws, as in training
    batches = cached_batches(images, labels, settings.batch_size, normalize, policy=policy, generator=generator,
                             channels_last=trainer.channels_last)

    def step() -> None:
        x, y = next(batches)
        trainer.step(x, y)

    return Pipeline("cached", "(b) brainbench cache", step)
