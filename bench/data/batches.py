"""Turn slices of the uint8 cache into model input, in batch, on the run's device."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from bench.data.augment import AugmentPolicy, augment_batch


class Normalizer:
    """(x - mean) / std with the entry's statistics, held on the device once."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device):
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def to_model_input(images: torch.Tensor, normalize: Normalizer, *, policy: AugmentPolicy | None = None,
                   generator: torch.Generator | None = None, channels_last: bool = False,
                   shard: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) on any device -> normalized float32 on the normalizer's device.

    `shard` is passed to `augment_batch`: these images are part of a batch split across processes.
    """
    x = images.to(normalize.mean.device, non_blocking=True).float().div_(255.0)
    if policy is not None:
        x = augment_batch(x, policy, generator, shard=shard)
    x = normalize(x)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def batch_indices(n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None,
                  drop_last: bool = False) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last and n > batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]
