"""A zoo entry is data: how to build the model, what it expects as input, how it is trained."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from zoo.pretraining import MocoRecipe
from zoo.recipe import Recipe
from zoo.weights import PretrainedWeights, load_pretrained

# The builder contract: every architecture builder takes these keywords and returns a module
# mapping (N, in_channels, input_size, input_size) floats to (N, num_classes) logits.
Builder = Callable[..., nn.Module]

# "imported": a model trained elsewhere and benchmarked from its file (bench/imported.py)
VARIANTS = ("scratch", "imagenet", "mocov2", "pixels", "imported")

# What a model's output is: class logits (N, num_classes), or mask logits (N, num_classes, H, W).
TASKS = ("classification", "segmentation")

# How an image is resized to the input size (after padding to a square); names of Pillow filters.
# "bilinear" (antialiased) is brainbench's own; an imported model may have been trained on another.
RESIZE_FILTERS = ("bilinear", "nearest", "bicubic", "lanczos", "area")

# How `brainbench explain` turns a transformer's hooked output into the (N, C, H, W) map a
# class-activation method weighs: "vit" drops the class token and lays the patch tokens on their
# square grid; "swin" moves torchvision Swin's channels-last (N, H, W, C) maps to channels-first.
CAM_RESHAPES = ("vit", "swin")

# Normalization applied after scaling pixels to [0, 1].
MRI_NORMALIZATION = ((0.5,), (0.25,))
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class CheckpointRef:
    """Where published weights for an entry live; `sha256` verifies a downloaded file."""

    url_or_path: str
    sha256: str | None = None


@dataclass(frozen=True)
class StudyCount:
    """A parameter count a source study reports, and the configuration it was reported for, so that
    `brainbench list` can build ours in that configuration and print both."""

    params: int
    in_channels: int
    num_classes: int


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
    num_classes: int = 4  # a default for counting parameters; training passes the dataset's count
    pretraining: MocoRecipe | None = None  # variant "mocov2": how the backbone is pretrained
    weights: PretrainedWeights | None = None  # variant "imagenet": the published weights it starts from
    resize: str = "bilinear"  # one of RESIZE_FILTERS: part of the input contract
    task: str = "classification"  # one of TASKS: decides the head, the loss, the metrics and the pictures
    study_count: StudyCount | None = None  # the source study's parameter count, where it reports one
    # Class-activation maps (`brainbench explain`): the dotted name, in the built model, of the layer
    # whose output the map weighs (usually the last convolution block), and for a transformer one of
    # CAM_RESHAPES. None: the entry has no such layer (knn.pixels learns nothing; U-Nets segment).
    cam_layer: str | None = None
    cam_reshape: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"entry {self.name}: task must be one of {TASKS}, got {self.task!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"entry {self.name}: variant must be one of {VARIANTS}, got {self.variant!r}")
        if (self.variant == "mocov2") != (self.pretraining is not None):
            raise ValueError(f"entry {self.name}: a mocov2 entry needs a pretraining recipe, and only it")
        if (self.variant == "imagenet") != (self.weights is not None):
            raise ValueError(f"entry {self.name}: an imagenet entry needs a weights spec, and only it")
        if self.weights is not None:
            self._check_matches_weights(self.weights)
        if self.resize not in RESIZE_FILTERS:
            raise ValueError(f"entry {self.name}: resize must be one of {RESIZE_FILTERS}, got {self.resize!r}")
        if self.cam_reshape not in (None, *CAM_RESHAPES):
            raise ValueError(f"entry {self.name}: cam_reshape must be None or one of {CAM_RESHAPES}, "
                             f"got {self.cam_reshape!r}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"entry {self.name}: in_channels must be 1 or 3, got {self.in_channels}")
        for stats in (self.mean, self.std):
            if len(stats) not in (1, self.in_channels):
                raise ValueError(f"entry {self.name}: mean/std need 1 or {self.in_channels} values, got {stats}")

    def _check_matches_weights(self, weights: PretrainedWeights) -> None:
        # ImageNet weights read RGB normalized their way; grayscale MRI is replicated to 3 channels.
        if self.in_channels != 3:
            raise ValueError(f"entry {self.name}: ImageNet weights take 3 channels, got in_channels={self.in_channels}")
        if (self.mean, self.std) != (weights.mean, weights.std):
            raise ValueError(f"entry {self.name}: mean/std {self.mean}/{self.std} differ from those its weights "
                             f"were trained with, {weights.mean}/{weights.std}")

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.variant}"

    def build(self, input_size: int | None = None, dropout: float | None = None, *, num_classes: int | None = None,
              pretrained: bool = True, weights_dir: str | os.PathLike | None = None) -> nn.Module:
        """The model; `input_size` and `dropout` follow a recipe's overrides, `num_classes` the label set
        of the dataset it is trained on (the zoo knows no dataset; `self.num_classes` is only a default).

        An imagenet entry comes with its published weights loaded (all but the head), found as
        zoo/weights.py describes, in `weights_dir` first, else $BRAINBENCH_WEIGHTS, else the library's
        cache; WeightsUnavailableError if none is there. `pretrained=False` skips that, for callers
        that overwrite every weight anyway (loading a trained checkpoint) or only count parameters.
        Other variants are freshly initialized (a mocov2 backbone is pretrained by bench).
        """
        model = self.builder(
            num_classes=num_classes or self.num_classes,
            in_channels=self.in_channels,
            input_size=input_size or self.input_size,
            dropout=dropout,
        )
        if self.weights is not None and pretrained:
            load_pretrained(model, self.weights, self.name, weights_dir)
        return model

    def param_count(self) -> int:
        """Parameters at the entry's input size, counted on the meta device: no memory, no weights."""
        key = (self, self.builder)  # the builder does not take part in an entry's equality
        if key not in _PARAM_COUNTS:
            with torch.device("meta"):
                model = self.build(pretrained=False)
            _PARAM_COUNTS[key] = sum(p.numel() for p in model.parameters())
        return _PARAM_COUNTS[key]

    def study_config_param_count(self) -> int | None:
        """Our parameters in the configuration the source study counted (its input channels and
        outputs), for comparison with `study_count.params`; None where the study reports none."""
        if self.study_count is None:
            return None
        with torch.device("meta"):
            model = self.builder(num_classes=self.study_count.num_classes, in_channels=self.study_count.in_channels,
                                 input_size=self.input_size, dropout=None)
        return sum(p.numel() for p in model.parameters() if p.requires_grad)


# Entries are frozen, so a count never goes stale; `brainbench list` and reports ask repeatedly.
_PARAM_COUNTS: dict[tuple, int] = {}
