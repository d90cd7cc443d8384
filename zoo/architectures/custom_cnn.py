"""The four custom CNNs of the seed study (cnn0-cnn3).

Every convolution is 3x3, stride 1, padding 1, followed by ReLU and a 2x2 max-pool with stride 2.
The head is two linear layers with ReLU between them and dropout either before the flatten
(cnn2) or between the two linear layers (the others). The flatten width follows from the input
size; at 3x256x256 the parameter counts match the study's table exactly (tests check this).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class CnnSpec:
    conv_channels: tuple[int, ...]  # output channels of each conv block
    hidden: int  # width of the first linear layer
    dropout: float
    dropout_before_flatten: bool = False


SPECS = {
    "cnn0": CnnSpec(conv_channels=(4, 4, 4, 4), hidden=32, dropout=0.3),
    "cnn1": CnnSpec(conv_channels=(4, 8, 16, 16), hidden=64, dropout=0.3),
    "cnn2": CnnSpec(conv_channels=(4, 8, 16, 32, 32), hidden=64, dropout=0.3, dropout_before_flatten=True),
    "cnn3": CnnSpec(conv_channels=(32, 64, 128, 256, 256), hidden=512, dropout=0.5),
}


def _feature_side(input_size: int, n_pools: int) -> int:
    side = input_size
    for _ in range(n_pools):
        side //= 2
    if side < 1:
        raise ValueError(f"input size {input_size} is too small for {n_pools} 2x2 max-pools")
    return side


def build_custom_cnn(arch: str, *, num_classes: int, in_channels: int, input_size: int,
                     dropout: float | None = None) -> nn.Sequential:
    spec = SPECS[arch]
    layers: list[nn.Module] = []
    previous = in_channels
    for channels in spec.conv_channels:
        layers += [nn.Conv2d(previous, channels, 3, stride=1, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2)]
        previous = channels
    side = _feature_side(input_size, len(spec.conv_channels))
    flat = previous * side * side
    drop = nn.Dropout(spec.dropout if dropout is None else dropout)
    if spec.dropout_before_flatten:
        head = [drop, nn.Flatten(), nn.Linear(flat, spec.hidden), nn.ReLU(inplace=True), nn.Linear(spec.hidden, num_classes)]
    else:
        head = [nn.Flatten(), nn.Linear(flat, spec.hidden), nn.ReLU(inplace=True), drop, nn.Linear(spec.hidden, num_classes)]
    return nn.Sequential(*layers, *head)
