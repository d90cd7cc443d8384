"""Self-supervised pretraining recipes: data describing how an entry's backbone is pretrained.

The implementation lives in bench (bench/pretrain); zoo only says what the recipe is, so that
its hash can key the pretrained backbone in the checkpoint store like any other checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class MocoRecipe:
    """MoCo v2 (Chen et al. 2020) on the training split's images, without labels."""

    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.03  # SGD, cosine schedule
    momentum: float = 0.9
    weight_decay: float = 1e-4
    encoder_momentum: float = 0.999  # key encoder = momentum * key + (1 - momentum) * query
    temperature: float = 0.2
    queue_size: int | None = None  # None: sized to the dataset (largest multiple of batch <= N)
    projection_dim: int = 128
    input_size: int | None = None  # None: the entry's input size
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "lr", "temperature", "projection_dim"):
            if not getattr(self, name) > 0:
                raise ValueError(f"MoCo {name} must be positive, got {getattr(self, name)}")
        if not 0.0 <= self.encoder_momentum < 1.0:
            raise ValueError(f"MoCo encoder_momentum must be in [0, 1), got {self.encoder_momentum}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def with_overrides(self, **overrides) -> MocoRecipe:
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown MoCo recipe field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **overrides)
