"""ResNet-50 with squeeze-and-excitation (Hu et al., "Squeeze-and-Excitation Networks"), two ways.

- `seresnet50`: the standard SE-ResNet-50. The SE unit recalibrates the residual branch before
  the addition with the identity. Built by timm.
- `resnet50_sepost`: the SE unit recalibrates each bottleneck's OUTPUT, after the addition and
  the ReLU: the "SE-POST" placement of Hu et al.'s integration ablation, and what a study gets
  by appending SE blocks to a stock ResNet-50's residual blocks.

`resnet50_sepost` is torchvision's ResNet-50 built from a Bottleneck subclass that adds one
module, `se_post`. Every other parameter keeps torchvision's name (`layer1.0.conv1.weight`,
`fc.weight`, ...), so torchvision's ResNet-50 weights load into it by name, leaving only the
`*.se_post.*` parameters at their initialization.
"""

from __future__ import annotations

import timm
import torch
from torch import nn
from torchvision import models
from torchvision.models.resnet import Bottleneck

from zoo.architectures.adapt import head_dropout, single_channel_stem

SE_REDUCTION = 16  # Hu et al.'s default ratio r


class SqueezeExcite(nn.Module):
    """Channel gates from globally pooled features: x * sigmoid(W2 relu(W1 mean(x)))."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"squeeze-excite over {channels} channels with reduction {reduction} "
                             "leaves no hidden unit")
        # 1x1 convolutions on the pooled (N, C, 1, 1) map are the paper's fully connected layers.
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.expand(torch.relu(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(gates)


class PostSEBottleneck(Bottleneck):
    """torchvision's Bottleneck, its output (after addition and ReLU) recalibrated by SE."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.se_post = SqueezeExcite(self.conv3.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se_post(super().forward(x))


def build_resnet50_sepost(*, num_classes: int, in_channels: int, input_size: int,
                          dropout: float | None = None) -> nn.Module:
    del input_size  # global average pooling makes ResNet size-agnostic
    model = models.ResNet(PostSEBottleneck, [3, 4, 6, 3], num_classes=num_classes)
    if in_channels == 1:
        single_channel_stem(model, "conv1")
    return head_dropout(model, "fc", dropout)


def build_seresnet50(*, num_classes: int, in_channels: int, input_size: int,
                     dropout: float | None = None) -> nn.Module:
    del input_size
    # timm's drop_rate is dropout before the classifier, what a recipe's dropout means.
    return timm.create_model("seresnet50", pretrained=False, num_classes=num_classes, in_chans=in_channels,
                             drop_rate=dropout or 0.0)
