"""How to run a training, as opposed to what it produces: never part of a recipe or checkpoint key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainSettings:
    nproc: int = 1  # >1: train in that many torchrun processes (DDP), then load the stored checkpoint
    compile_step: bool = False  # torch.compile the model for the training step (forward and backward)

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise ValueError(f"nproc must be at least 1, got {self.nproc}")


DEFAULT_SETTINGS = TrainSettings()  # one process, eager
