"""What the three throughput pipelines share: settings, the model under training, and the timer.

Every pipeline trains the same model with the same optimizer through `bench.train.step.train_step`,
so the figures differ only in where each batch comes from.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from bench.errors import OptionError
from bench.train.loop import autocast_dtype_for
from bench.train.optim import make_optimizer
from bench.train.step import train_step
from zoo.entry import ZooEntry
from zoo.recipe import Recipe


def default_workers() -> int:
    """DataLoader workers for the ImageFolder pipeline: min(4, CPU count), a common choice."""
    return min(4, os.cpu_count() or 1)


@dataclass(frozen=True)
class ThroughputSettings:
    batch_size: int
    input_size: int
    steps: int = 20  # timed optimisation steps per pipeline and round
    rounds: int = 3  # rounds of (a), (b), (c) in turn; each figure is its median over the rounds
    warmup: int = 5  # untimed steps per pipeline before its first round: allocator, cuDNN autotuning,
    # torch.compile, DataLoader workers
    workers: int = 0  # DataLoader workers of the ImageFolder pipeline
    amp: bool | None = None  # None: bf16 (else fp16) autocast on CUDA, full precision on CPU
    compile: bool = False
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        for option, value, least in (("--batch-size", self.batch_size, 1), ("--input-size", self.input_size, 1),
                                     ("--steps", self.steps, 1), ("--rounds", self.rounds, 1),
                                     ("--warmup", self.warmup, 0), ("--workers", self.workers, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise OptionError(f"{option} must be an integer of at least {least}, got {value!r}")


def amp_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """The autocast dtype: the training loop's choice by default; --amp on CPU means bf16."""
    if amp is False:
        return None
    chosen = autocast_dtype_for(device)
    if amp and chosen is None:
        return torch.bfloat16
    return chosen


@dataclass
class Trainer:
    """The model, optimizer and precision that every pipeline's batches are fed to."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    device: torch.device
    channels_last: bool

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        train_step(self.model, x, y, self.criterion, self.optimizer, self.scaler, self.amp_dtype)


def make_trainer(entry: ZooEntry, recipe: Recipe, settings: ThroughputSettings, device: torch.device,
                 num_classes: int | None = None) -> Trainer:
    """Freshly initialized weights (never downloaded ones: throughput depends on the architecture only),
    with one output per class of the dataset trained on (`num_classes`; default the entry's)."""
    torch.manual_seed(settings.seed)
    model = entry.build(input_size=settings.input_size, dropout=recipe.dropout, num_classes=num_classes,
                        pretrained=False)
    channels_last = device.type == "cuda"  # as the training loop does
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    model.train()
    optimizer = make_optimizer(model, recipe)
    if settings.compile:
        model = torch.compile(model)  # compiled lazily, during the first pipeline's warm-up
    dtype = amp_dtype(device, settings.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    return Trainer(model, optimizer, criterion, scaler, dtype, device, channels_last)


@dataclass
class Pipeline:
    """One way of feeding batches to the trainer: `step()` fetches one batch and trains on it."""

    name: str
    label: str  # progress bar text
    step: Callable[[], None]
    close: Callable[[], None] = lambda: None  # frees what the pipeline holds (DataLoader workers)


@dataclass(frozen=True)
class Measurement:
    images_per_s: float  # median over rounds
    step_ms: float  # median over rounds of the mean wall time of one step: fetching the batch plus training on it
    steps: int  # timed steps per round
    rounds_images_per_s: tuple[float, ...]
    seconds: float  # timed, all rounds together

    @staticmethod
    def from_rounds(seconds_per_round: list[float], steps: int, batch_size: int) -> Measurement:
        ips = tuple(steps * batch_size / seconds for seconds in seconds_per_round)
        return Measurement(images_per_s=statistics.median(ips),
                           step_ms=statistics.median(seconds_per_round) / steps * 1e3,
                           steps=steps, rounds_images_per_s=ips, seconds=sum(seconds_per_round))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], None], *, steps: int, device: torch.device, desc: str = "",
               progress: bool = False) -> float:
    """Seconds for `steps` calls of `step()`, one batch each.

    The clock is read after waiting for the device, at the start and at the end only: steps
    overlap on the device as they do in training.
    """
    synchronize(device)
    started = time.perf_counter()
    for _ in tqdm(range(steps), desc=desc, unit="step", leave=False, disable=not progress):
        step()
    synchronize(device)
    return time.perf_counter() - started


def measure_in_rounds(pipelines: list[Pipeline], settings: ThroughputSettings,
                      device: torch.device) -> dict[str, Measurement]:
    """Warm each pipeline up, then time them in turn, round after round.

    Interleaving makes the figures comparable on a shared machine: a slow spell from someone
    else's job lands in one round of every pipeline rather than in all rounds of one, and the
    median over rounds discards it.
    """
    for pipeline in pipelines:
        time_steps(pipeline.step, steps=settings.warmup, device=device)
    seconds: dict[str, list[float]] = {p.name: [] for p in pipelines}
    for round_ in range(1, settings.rounds + 1):
        for pipeline in pipelines:
            desc = f"round {round_}/{settings.rounds} {pipeline.label}"
            seconds[pipeline.name].append(time_steps(pipeline.step, steps=settings.steps, device=device,
                                                     desc=desc, progress=settings.progress))
    return {name: Measurement.from_rounds(values, settings.steps, settings.batch_size)
            for name, values in seconds.items()}
