"""The first channels of each convolution block's output for one image, caught by forward hooks.

A "block" is found without knowing the architecture: every resolution a convolution produces is
one stage, and its block is the outermost module whose output has that resolution, the last of
them if several. That gives the custom CNNs' conv + ReLU outputs (before each max-pool), a ResNet's
stem and `layer1`..`layer4`, DenseNet's dense blocks, VGG's last ReLU before each pool. A 1x1
output (squeeze-and-excitation gates, pooled vectors) is no map and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.explain import ExplainError


@dataclass(frozen=True)
class BlockMaps:
    name: str  # the module's dotted name in the model
    channels: int  # how many channels the block outputs; `maps` holds the first few
    maps: np.ndarray  # (n, H, W) float32, the block's raw output for the image


def _is_patch_embedding(conv: nn.Conv2d) -> bool:
    # A transformer cuts patches with a convolution whose kernel equals its stride: it tiles the
    # image once, and its output is a token grid, not a feature map of a convolutional network.
    return conv.kernel_size == conv.stride and max(conv.kernel_size) > 1


def convolutions(model: nn.Module) -> list[str]:
    """Names of the model's convolutions, patch embeddings excepted."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and not _is_patch_embedding(m)]


def check_has_convolutions(name: str, model: nn.Module) -> None:
    if not convolutions(model):
        raise ExplainError(f"--feature-maps: {name} has no convolution layers (a transformer: its only "
                           f"convolution cuts patches), so it has no feature maps to show")


@torch.no_grad()
def block_outputs(model: nn.Module, image: torch.Tensor, channels: int) -> list[BlockMaps]:
    """The first `channels` channels of each block's output for the normalized input `image`
    (1, C, H, W), finest resolution first."""
    if channels < 1:
        raise ValueError(f"channels must be at least 1, got {channels}")
    conv_names = set(convolutions(model))
    stages: dict[tuple[int, int], None] = {}  # resolutions a convolution produced, in order
    best: dict[tuple[int, int], tuple[int, str, int, torch.Tensor]] = {}  # resolution -> depth, name, C, maps

    def hook(name: str):
        depth = name.count(".")

        def record(module, inputs, output):
            if not isinstance(output, torch.Tensor) or output.ndim != 4:
                return
            resolution = tuple(output.shape[-2:])
            if name in conv_names:
                stages.setdefault(resolution, None)
            held = best.get(resolution)
            # Hooks fire as modules finish, children before their parent: the outermost module
            # wins, and of equally deep ones the last. Cloned now, since a later in-place
            # activation would change the tensor.
            if held is None or depth <= held[0]:
                best[resolution] = (depth, name, output.shape[1], output[0, :channels].detach().float().cpu().clone())
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in model.named_modules() if name]
    try:
        model(image)
    finally:
        for handle in handles:
            handle.remove()
    return [BlockMaps(best[r][1], best[r][2], best[r][3].numpy()) for r in stages if r != (1, 1)]
