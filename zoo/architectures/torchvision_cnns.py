"""The classic ImageNet CNNs of the transfer-learning studies, as torchvision builds them.

Each builder returns torchvision's own model with a `num_classes` head, so that torchvision's
published ImageNet weights load by parameter name (zoo/weights.py). A one-channel entry gets a
one-channel stem of the same geometry; ImageNet entries keep three channels.
ResNet-18 and MobileNetV2 live in torchvision_models.py, where they were first added.
"""

from __future__ import annotations

from torch import nn
from torchvision import models

from zoo.architectures.adapt import check_min_size, head_dropout, single_channel_stem


def _classifier_dropout(dropout: float | None) -> dict:
    """Keyword for builders with their own classifier dropout; None keeps torchvision's default."""
    return {} if dropout is None else {"dropout": dropout}


def build_alexnet(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None) -> nn.Module:
    # Three 3x3/2 max-pools after an 11x11/4 convolution leave nothing below 63 px.
    check_min_size("alexnet", input_size, 63)
    model = models.alexnet(weights=None, num_classes=num_classes, **_classifier_dropout(dropout))
    return single_channel_stem(model, "features.0") if in_channels == 1 else model


def build_vgg16(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None) -> nn.Module:
    check_min_size("vgg16", input_size, 32)  # five 2x2 max-pools
    model = models.vgg16(weights=None, num_classes=num_classes, **_classifier_dropout(dropout))
    return single_channel_stem(model, "features.0") if in_channels == 1 else model


def build_resnet50(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None) -> nn.Module:
    del input_size  # global average pooling makes ResNet size-agnostic
    model = models.resnet50(weights=None, num_classes=num_classes)
    if in_channels == 1:
        single_channel_stem(model, "conv1")
    return head_dropout(model, "fc", dropout)


def build_densenet121(*, num_classes: int, in_channels: int, input_size: int,
                      dropout: float | None = None) -> nn.Module:
    del input_size
    # torchvision's `drop_rate` acts inside every dense layer; recipes mean dropout before the head.
    model = models.densenet121(weights=None, num_classes=num_classes)
    if in_channels == 1:
        single_channel_stem(model, "features.conv0")
    return head_dropout(model, "classifier", dropout)


def build_efficientnetv2_s(*, num_classes: int, in_channels: int, input_size: int,
                           dropout: float | None = None) -> nn.Module:
    del input_size
    model = models.efficientnet_v2_s(weights=None, num_classes=num_classes, **_classifier_dropout(dropout))
    return single_channel_stem(model, "features.0.0") if in_channels == 1 else model
