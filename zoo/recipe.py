"""A training recipe: everything that decides what a trained checkpoint contains.

Its hash, together with the entry name and the dataset fingerprint, identifies a checkpoint.
Overrides use `dataclasses.replace`, which re-runs validation.

Every value is checked by type and range, wherever it comes from (a suite file, a CLI flag, code):
`check_recipe_value` for one field, `recipe_overrides` for a table of them. Messages name the
place (`where`), the field and the value, on one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import typing
from dataclasses import dataclass

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "step", "cosine", "exponential", "onecycle")
AUGMENT_POLICIES = ("none", "basic")

# Input sizes a recipe may ask for. 16 px is the smallest that the four 2x2 max-pools of the
# smallest custom CNNs (cnn0, cnn1) leave a pixel of (cnn2 and cnn3 have five and need 32, as
# VGG-16 and Swin-T do, AlexNet 63: their builders say so). At the top, memory: the decoded cache
# holds every image as uint8, so 1024 px RGB is 3 MB an image, 18 GB for the Kaggle training split.
MIN_INPUT_SIZE = 16
MAX_INPUT_SIZE = 1024


class RecipeError(ValueError):
    """A recipe field is unknown or has a value of the wrong type or outside its range."""


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
        for f in dataclasses.fields(self):
            # Ints given for float fields become floats, so that lr=1 and lr=1.0 hash alike.
            object.__setattr__(self, f.name, check_recipe_value(f.name, getattr(self, f.name)))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Stable across machines and Python versions: sorted JSON of the fields."""
        text = json.dumps(self.as_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def with_overrides(self, **overrides) -> Recipe:
        """`dataclasses.replace` that names an unknown field instead of a bare TypeError."""
        unknown = set(overrides) - set(FIELD_TYPES)
        if unknown:
            raise RecipeError(f"unknown recipe field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **overrides)


FIELD_TYPES: dict[str, object] = typing.get_type_hints(Recipe)
CHOICES = {"optimizer": OPTIMIZERS, "scheduler": SCHEDULERS, "augment": AUGMENT_POLICIES}


def _in_unit_interval(v: float) -> bool:
    return 0.0 <= v < 1.0


# Per field: what a value must satisfy once its type is right, and how to say it.
RANGES: dict[str, tuple[typing.Callable[[typing.Any], bool], str]] = {
    "lr": (lambda v: v > 0, "must be positive"),
    "weight_decay": (lambda v: v >= 0, "must not be negative"),
    "momentum": (_in_unit_interval, "must be in [0, 1)"),
    "gamma": (lambda v: v > 0, "must be positive"),
    "step_size": (lambda v: v >= 1, "must be positive"),
    "epochs": (lambda v: v >= 1, "must be positive"),
    "batch_size": (lambda v: v >= 1, "must be positive"),
    "label_smoothing": (_in_unit_interval, "must be in [0, 1)"),
    "dropout": (_in_unit_interval, "must be in [0, 1)"),
    "patience": (lambda v: v >= 1, "must be at least 1 epoch"),
    "seed": (lambda v: v >= 0, "must not be negative"),
    "input_size": (lambda v: MIN_INPUT_SIZE <= v <= MAX_INPUT_SIZE,
                   f"must be between {MIN_INPUT_SIZE} and {MAX_INPUT_SIZE} px"),
    "val_fraction": (lambda v: 0.0 < v < 1.0, "must be in (0, 1)"),
}


def shown(value: object) -> str:
    """A value as it is written in a TOML file: "three", true, 1.5, inf."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def check_recipe_value(name: str, value: object, where: str = "") -> object:
    """`value` as recipe field `name` stores it, or RecipeError naming `where`, the field and the value.

    int fields take whole numbers (not bools: True is an int in Python, not an epoch count, and
    not 3.0); float fields take any finite real number, stored as float; Optional fields also take
    None; string fields take one of their choices.
    """
    prefix = f"{where} {name}" if where else name
    if name not in FIELD_TYPES:
        raise RecipeError(f"{where + ': ' if where else ''}unknown recipe field {name!r}; "
                          f"known: {', '.join(FIELD_TYPES)}")
    kind = FIELD_TYPES[name]
    if value is None and type(None) in typing.get_args(kind):
        return None
    base = next((t for t in typing.get_args(kind) if t is not type(None)), kind)
    value = _typed(base, value, name, prefix)
    test, requirement = RANGES.get(name, (None, ""))
    if test is not None and not test(value):
        raise RecipeError(f"{prefix} {requirement}, got {shown(value)}")
    return value


def _typed(base: type, value: object, name: str, prefix: str) -> object:
    if base is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{prefix} must be true or false, got {shown(value)}")
        return value
    if base is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise RecipeError(f"{prefix} must be a whole number, got {shown(value)}")
        return int(value)
    if base is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise RecipeError(f"{prefix} must be a number, got {shown(value)}")
        if not math.isfinite(value):
            raise RecipeError(f"{prefix} must be a finite number, got {shown(value)}")
        return float(value)
    if not isinstance(value, str) or value not in CHOICES[name]:
        raise RecipeError(f"{prefix} must be one of {', '.join(CHOICES[name])}; got {shown(value)}")
    return value


def recipe_overrides(mapping: dict, where: str) -> dict:
    """Checked overrides from a table of recipe fields (a suite's [recipe], a CLI's flags):
    unknown keys and bad values are RecipeErrors naming `where` and the key."""
    unknown = sorted(set(mapping) - set(FIELD_TYPES))
    if unknown:
        raise RecipeError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(sorted(FIELD_TYPES))}")
    return {key: check_recipe_value(key, value, where) for key, value in mapping.items()}
