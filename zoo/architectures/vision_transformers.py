"""Vision transformers: a compact ViT trained from scratch, ViT-B/16 and Swin-T.

The ViTs are timm's VisionTransformer with learned position embeddings for an
`input_size / 16` square grid, so the input size must be a multiple of the patch size. ImageNet
weights for ViT-B/16 were trained at 224 px; at another size the weights loader resamples their
position embeddings to the model's grid, as timm itself does (zoo/weights.py). Swin-T is
torchvision's, which pads to whole windows and so takes any size from 32 px up.
"""

from __future__ import annotations

import timm
from timm.models.vision_transformer import VisionTransformer
from torch import nn
from torchvision import models

from zoo.architectures.adapt import check_min_size, head_dropout, single_channel_stem

PATCH = 16

# ViT-S/16's width (384, six heads of 64) at half its depth: about 10.8 M parameters, ResNet-18's
# budget, so `vit_small.scratch` against `resnet18.scratch` compares architectures, not sizes.
# Trained from scratch on a few thousand images, a deeper ViT only overfits sooner and trains
# slower; at 128 px the 8x8 grid of 64 tokens keeps attention cheap enough for a CPU.
VIT_SMALL = {"embed_dim": 384, "depth": 6, "num_heads": 6, "mlp_ratio": 4.0}


def _check_patch_grid(arch: str, input_size: int) -> None:
    if input_size % PATCH or input_size < PATCH:
        raise ValueError(f"{arch} cuts {PATCH}x{PATCH} patches: the input size must be a positive multiple "
                         f"of {PATCH}, got {input_size}")


def build_vit_small(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None) -> nn.Module:
    _check_patch_grid("vit_small", input_size)
    return VisionTransformer(img_size=input_size, patch_size=PATCH, in_chans=in_channels, num_classes=num_classes,
                             drop_rate=dropout or 0.0, **VIT_SMALL)


def build_vit_b16(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None) -> nn.Module:
    _check_patch_grid("vit_b16", input_size)
    # timm's drop_rate is the dropout before the head, what a recipe's dropout means.
    return timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=num_classes,
                             in_chans=in_channels, img_size=input_size, drop_rate=dropout or 0.0)


def build_swin_t(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None) -> nn.Module:
    check_min_size("swin_t", input_size, 32)  # 4x4 patches, then three 2x2 merges
    model = models.swin_t(weights=None, num_classes=num_classes)
    if in_channels == 1:
        single_channel_stem(model, "features.0.0")
    # torchvision's `dropout` acts inside every block; recipes mean dropout before the head.
    return head_dropout(model, "head", dropout)
