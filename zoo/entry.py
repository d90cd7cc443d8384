"""A zoo entry is data: how to build the model, what it expects as input, how it is trained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from zoo.recipe import Recipe

# The builder contract: every architecture builder takes these keywords and returns a module
# mapping (N, in_channels, input_size, input_size) floats to (N, num_classes) logits.
Builder = Callable[..., nn.Module]

VARIANTS = ("scratch", "imagenet", "mocov2")

# Normalization applied after scaling pixels to [0, 1].
MRI_NORMALIZATION = ((0.5,), (0.25,))
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class CheckpointRef:
    """Where published weights for an entry live; `sha256` verifies a downloaded file."""

    url_or_path: str
    sha256: str | None = None


@dataclass(frozen=True)
class ZooEntry:
    arch: str
    variant: str
    builder: Builder = field(repr=False, compare=False)
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    recipe: Recipe
    source: str  # which study or paper the entry reproduces
    checkpoint: CheckpointRef | None = None
    num_classes: int = 4

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"entry {self.name}: variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"entry {self.name}: in_channels must be 1 or 3, got {self.in_channels}")
        for stats in (self.mean, self.std):
            if len(stats) not in (1, self.in_channels):
                raise ValueError(f"entry {self.name}: mean/std need 1 or {self.in_channels} values, got {stats}")

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.variant}"

    def build(self, input_size: int | None = None, dropout: float | None = None) -> nn.Module:
        """A freshly initialized model; `input_size` and `dropout` follow a recipe's overrides."""
        return self.builder(
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            input_size=input_size or self.input_size,
            dropout=dropout,
        )
