"""Every registered zoo entry. Adding a model means adding an entry here, nothing else."""

from __future__ import annotations

from functools import partial

from zoo.architectures.custom_cnn import SPECS, build_custom_cnn
from zoo.architectures.torchvision_models import build_mobilenetv2, build_resnet18
from zoo.entry import MRI_NORMALIZATION, ZooEntry
from zoo.recipe import Recipe
from zoo.registry import register

CUSTOM_CNN_SOURCE = (
    "seed study of four custom CNNs (3x3 conv + ReLU + 2x2 max-pool blocks, two-layer head), "
    "reported at 3x256x256; 128 px by default here so CPU training is practical "
    "(override input_size=256 for the study's size)"
)

for arch in SPECS:
    register(ZooEntry(
        arch=arch, variant="scratch", builder=partial(build_custom_cnn, arch),
        input_size=128, in_channels=3, mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1],
        recipe=Recipe(optimizer="adam", lr=1e-3, epochs=10, batch_size=32, scheduler="cosine"),
        source=CUSTOM_CNN_SOURCE,
    ))

register(ZooEntry(
    arch="resnet18", variant="scratch", builder=build_resnet18,
    input_size=224, in_channels=1, mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1],
    recipe=Recipe(optimizer="adam", lr=1e-3, epochs=20, batch_size=32, scheduler="cosine"),
    source="ResNet-18 (He et al. 2016) trained from scratch, as in the transfer-learning comparison studies",
))

register(ZooEntry(
    arch="mobilenetv2", variant="scratch", builder=build_mobilenetv2,
    input_size=224, in_channels=1, mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1],
    recipe=Recipe(optimizer="adam", lr=1e-3, epochs=20, batch_size=32, scheduler="cosine"),
    source="MobileNetV2 (Sandler et al. 2018) trained from scratch, as in the lightweight-model comparisons",
))
