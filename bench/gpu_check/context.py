"""What every check is handed: the device, small sizes fit for it, the mini dataset, fresh stores.

Sizes are the first time budget: on CUDA they are large enough to run the real kernels (ResNets,
cuDNN, autotuning) and small enough that all checks fit in minutes on an H200; on the CPU they
are tiny, so that every CPU-reachable path runs in about a minute on two cores.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import zoo
from bench.data.batches import Normalizer
from bench.data.cache import Preprocessing
from bench.data.dataset import LoadedDataset, load_dataset
from bench.paths import EMBEDDED_DATASET
from bench.train.store import CheckpointStore
from zoo.entry import ZooEntry


@dataclass(frozen=True)
class Sizes:
    train_entry: str  # trained by train_bf16 and observed by channels_last_and_resident_batches
    train_size: int
    small_entry: str  # compile_step, deployment_modes, resume, ddp: cheap to compile and run
    small_size: int
    epochs: int
    batch_size: int
    deploy_batch: int  # throughput batch and agreement chunk of deployment_modes (one shape fewer to compile)
    throughput_entry: str
    throughput_size: int | None  # None: the entry's own input size
    throughput_batch: int | None  # None: the entry recipe's batch size
    throughput_steps: int
    throughput_rounds: int
    throughput_warmup: int
    throughput_workers: int | None  # None: bench.throughput.default_workers()


CUDA_SIZES = Sizes(train_entry="resnet18.scratch", train_size=64, small_entry="cnn0.scratch", small_size=64,
                   epochs=2, batch_size=32, deploy_batch=16, throughput_entry="resnet50.scratch",
                   throughput_size=None, throughput_batch=None, throughput_steps=10, throughput_rounds=3,
                   throughput_warmup=5, throughput_workers=None)
CPU_SIZES = Sizes(train_entry="cnn0.scratch", train_size=32, small_entry="cnn0.scratch", small_size=32,
                  epochs=2, batch_size=32, deploy_batch=8, throughput_entry="cnn0.scratch",
                  throughput_size=32, throughput_batch=16, throughput_steps=2, throughput_rounds=1,
                  throughput_warmup=1, throughput_workers=0)


def sizes_for(device: torch.device) -> Sizes:
    return CUDA_SIZES if device.type == "cuda" else CPU_SIZES


@dataclass
class CheckContext:
    device: torch.device
    work_dir: Path  # every store a check makes lives here, never in the user's store
    cache_dir: Path | None = None  # decoded images; None: bench.paths' default ($BRAINBENCH_CACHE, ...)
    sizes: Sizes | None = None
    _datasets: dict[tuple[int, int], LoadedDataset] = field(default_factory=dict)
    _shared: dict[str, Any] = field(default_factory=dict)
    _stores: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        if self.sizes is None:
            self.sizes = sizes_for(self.device)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def dataset(self, size: int, channels: int) -> LoadedDataset:
        """The embedded mini dataset (320 training, 80 test images) decoded at `size`, once per run."""
        key = (size, channels)
        if key not in self._datasets:
            self._datasets[key] = load_dataset(EMBEDDED_DATASET, Preprocessing(size, channels), self.cache_dir)
        return self._datasets[key]

    def entry_data(self, name: str, size: int) -> tuple[ZooEntry, LoadedDataset]:
        entry = zoo.get(name)
        return entry, self.dataset(size, entry.in_channels)

    def normalizer(self, entry) -> Normalizer:
        return Normalizer(entry.mean, entry.std, self.device)

    def new_store(self, label: str) -> CheckpointStore:
        """An empty checkpoint store of its own, so no check loads what another one trained."""
        return CheckpointStore(self.work_dir / f"store-{next(self._stores)}-{label}")

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """A result several checks inspect (one observed training run), computed by the first that asks.
        A failure is not kept: the next check asking tries again and reports its own error."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]
