"""Small surgery shared by the library builders: a one-channel stem, dropout before the head.

Both keep the parameter names of the library's model wherever the tensors stay the same, so
that ImageNet weights published for it load by name.
"""

from __future__ import annotations

from torch import nn

from zoo.architectures.torchvision_models import _single_channel_conv


def _replace(model: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, module)


def single_channel_stem(model: nn.Module, path: str) -> nn.Module:
    """Replace the first convolution at `path` (e.g. "features.0.0") by a one-channel one."""
    conv = model.get_submodule(path)
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"{path} of {type(model).__name__} is a {type(conv).__name__}, not the stem Conv2d")
    _replace(model, path, _single_channel_conv(conv))
    return model


def head_dropout(model: nn.Module, path: str, dropout: float | None) -> nn.Module:
    """Dropout before the classifier at `path`, for architectures that have none of their own.

    The classifier becomes `<path>.1`; the weights loader re-initializes everything under the
    head's path anyway, so the changed name costs nothing there.
    """
    if dropout:
        _replace(model, path, nn.Sequential(nn.Dropout(dropout), model.get_submodule(path)))
    return model


def check_min_size(arch: str, input_size: int, minimum: int) -> None:
    if input_size < minimum:
        raise ValueError(f"{arch} needs an input size of at least {minimum} px, got {input_size}")
