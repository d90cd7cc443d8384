"""A training recipe: everything that decides what a trained checkpoint contains.

Its hash, together with the entry name and the dataset fingerprint, identifies a checkpoint.
Overrides use `dataclasses.replace`, which re-runs validation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "step", "cosine", "exponential", "onecycle")
AUGMENT_POLICIES = ("none", "basic")


@dataclass(frozen=True)
class Recipe:
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    scheduler: str = "cosine"
    step_size: int = 10  # step scheduler: epochs between decays
    gamma: float = 0.1  # step and exponential schedulers: decay factor
    epochs: int = 10
    batch_size: int = 32
    label_smoothing: float = 0.0
    augment: str = "basic"
    random_resized_crop: bool = False
    autoaugment: bool = False
    dropout: float | None = None  # None: the architecture's own default
    patience: int | None = None  # early stopping on validation accuracy; None: never stop early
    seed: int = 0
    input_size: int | None = None  # None: the entry's input size
    crop_to_content: bool = False
    val_fraction: float = 0.15

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("scheduler", self.scheduler, SCHEDULERS)
        _check_choice("augment", self.augment, AUGMENT_POLICIES)
        _check_positive("lr", self.lr)
        _check_positive("epochs", self.epochs)
        _check_positive("batch_size", self.batch_size)
        if self.input_size is not None:
            _check_positive("input_size", self.input_size)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be at least 1 epoch, got {self.patience}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Stable across machines and Python versions: sorted JSON of the fields."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def with_overrides(self, **overrides) -> Recipe:
        """`dataclasses.replace` that names an unknown field instead of a bare TypeError."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown recipe field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **overrides)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
