"""Standard architectures from torchvision, adapted to a 4-class head and 1- or 3-channel input."""

from __future__ import annotations

from torch import nn
from torchvision import models


def _single_channel_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """Same geometry as `conv`, reading one channel: grayscale MRI needs no fake RGB."""
    return nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)


def build_resnet18(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None) -> nn.Module:
    del input_size  # global average pooling makes ResNet size-agnostic
    model = models.resnet18(weights=None, num_classes=num_classes)
    if in_channels == 1:
        model.conv1 = _single_channel_conv(model.conv1)
    if dropout:
        model.fc = nn.Sequential(nn.Dropout(dropout), model.fc)
    return model


def build_mobilenetv2(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None) -> nn.Module:
    del input_size
    kwargs = {} if dropout is None else {"dropout": dropout}
    model = models.mobilenet_v2(weights=None, num_classes=num_classes, **kwargs)
    if in_channels == 1:
        model.features[0][0] = _single_channel_conv(model.features[0][0])
    return model
