"""Class-activation maps with pytorch-grad-cam: which method, which layer, and the maps themselves.

The layer comes from the zoo entry (`cam_layer`, `cam_reshape`), so that no architecture needs a
case here; `--layer` may name any other module of the built model. The maps are what the package
computes: per image and target class, the layer's channels weighed by the method, rectified,
scaled to [0, 1] and resized to the model input.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from bench.explain import ExplainError
from zoo.entry import ZooEntry

# --method names, lower case as the papers spell them, and the pytorch_grad_cam class of each. By
# name, not imported: every brainbench command loads the command modules, and the package (with
# OpenCV) is only needed once a map is drawn. ScoreCAM runs one forward pass per channel of the
# layer (2,048 for a ResNet-50), so it is slow on a CPU; EigenCAM ignores the target class.
METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "gradcam-elementwise": "GradCAMElementWise",
    "eigengradcam": "EigenGradCAM",
    "eigencam": "EigenCAM",
    "scorecam": "ScoreCAM",
}
DEFAULT_METHOD = "gradcam"

LISTED_LAYERS = 24  # an unknown --layer lists this many names; ResNet-50 alone has 160 with a convolution


def method_class(name: str) -> type:
    if name not in METHODS:
        raise ExplainError(f"--method {name}: unknown; valid methods: {', '.join(METHODS)}")
    return getattr(importlib.import_module("pytorch_grad_cam"), METHODS[name])


def check_explainable(entry: ZooEntry, layer: str | None) -> None:
    """Refuse, before any checkpoint is read, an entry without class logits or without a layer to hook."""
    if entry.task != "classification":
        raise ExplainError(f"{entry.name} is a {entry.task} entry: explain draws class-activation maps of "
                           f"classifiers (`brainbench predict {entry.name}` draws its masks)")
    if entry.cam_layer is None and layer is None:
        raise ExplainError(f"{entry.name} has no layer to explain: its zoo entry names no cam_layer (a model that "
                           f"learns no layers, like a nearest-neighbour lookup, has no gradients); "
                           f"--layer NAME names one")


def check_has_gradients(entry: ZooEntry, model: nn.Module) -> None:
    if not any(p.requires_grad for p in model.parameters()):
        raise ExplainError(f"{entry.name} has no gradients: it has no learned parameters to explain")


# --- the layer ----------------------------------------------------------------------------------

def _has_convolution(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


def layer_choices(model: nn.Module, default: str | None = None) -> list[str]:
    """Names worth offering for --layer: the default, then the modules holding a convolution, two
    levels deep at most (`layer4`, `layer4.1`, not every conv inside them)."""
    names = [name for name, module in model.named_modules()
             if name and name.count(".") < 2 and _has_convolution(module)]
    return ([default] if default else []) + [name for name in names if name != default]


def resolve_layer(model: nn.Module, name: str, *, option: str = "--layer", default: str | None = None) -> nn.Module:
    """The module called `name` in `model`; ExplainError listing the names on offer otherwise."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        choices = layer_choices(model, default)
        shown = ", ".join(choices[:LISTED_LAYERS])
        more = f" and {len(choices) - LISTED_LAYERS} more" if len(choices) > LISTED_LAYERS else ""
        raise ExplainError(f"{option} {name}: no such module in the model; valid layers: {shown}{more} "
                           f"(any dotted name from named_modules() works)") from None


# --- turning a transformer's output into a map --------------------------------------------------

def _vit_grid(prefix_tokens: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 3:  # a --layer such as the patch embedding's convolution is a map already
            return tokens
        patches = tokens[:, prefix_tokens:, :]
        side = math.isqrt(patches.shape[1])
        if side * side != patches.shape[1]:
            raise ExplainError(f"{patches.shape[1]} patch tokens do not form a square grid")
        return patches.reshape(patches.shape[0], side, side, patches.shape[2]).permute(0, 3, 1, 2)
    return reshape


def _channels_first(maps: torch.Tensor) -> torch.Tensor:
    # torchvision's Swin keeps (N, H, W, C) between its stages and in its final norm.
    return maps.permute(0, 3, 1, 2) if maps.ndim == 4 else maps


def reshape_transform(kind: str | None, model: nn.Module,
                      layer: nn.Module | None = None) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The function for ZooEntry.cam_reshape `kind` (see zoo.entry.CAM_RESHAPES) applied to `layer`'s
    output, None for a CNN."""
    if kind is None:
        return None
    if kind == "vit":
        # timm's ViTs say how many tokens (class, registers) precede the patches.
        return _vit_grid(getattr(model, "num_prefix_tokens", 1))
    if kind == "swin":
        # Swin's one convolution (its patch cutter, a --layer choice) outputs channels-first already.
        return None if isinstance(layer, nn.Conv2d) else _channels_first
    raise ExplainError(f"cam_reshape {kind!r} is not known to bench.explain")


class _CheckedReshape:
    """The reshape (or none), then a check that the layer gave an (N, C, H, W) map; also records
    that the layer ran at all, since a module the forward pass never calls yields no map."""

    def __init__(self, reshape: Callable | None, layer_name: str):
        self.reshape, self.layer_name, self.called = reshape, layer_name, False

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        self.called = True
        if not isinstance(output, torch.Tensor):
            raise ExplainError(f"layer {self.layer_name} outputs a {type(output).__name__}, not a tensor")
        maps = self.reshape(output) if self.reshape else output
        if maps.ndim != 4:
            raise ExplainError(f"layer {self.layer_name} outputs shape {tuple(output.shape)}, not a (N, C, H, W) "
                               f"map; choose a convolution block (or, for a transformer, a block's norm)")
        return maps


# --- the maps -----------------------------------------------------------------------------------

def class_activation_maps(model: nn.Module, layer: nn.Module, image: torch.Tensor, classes: Sequence[int], *,
                          method: str = DEFAULT_METHOD, reshape: Callable | None = None,
                          layer_name: str = "") -> np.ndarray:
    """(len(classes), H, W) float32 maps in [0, 1] for one normalized model input `image` (1, C, H, W):
    where `layer`'s output makes the model answer each class in `classes` (indices of its logits)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # see METHODS: loaded when used

    checked = _CheckedReshape(reshape, layer_name)
    cam = method_class(method)(model=model, target_layers=[layer], reshape_transform=checked)
    # Not `with cam`: its __exit__ swallows an IndexError and prints it; release the hooks ourselves.
    try:
        # One copy of the image per class: the package takes one target per batch element.
        batch = image.repeat(len(classes), 1, 1, 1)
        maps = cam(input_tensor=batch, targets=[ClassifierOutputTarget(int(c)) for c in classes])
    except ExplainError:
        raise
    except Exception:
        if not checked.called:
            raise ExplainError(f"layer {layer_name} is not used by the model's forward pass; "
                               f"it yields no map") from None
        raise
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)  # the backward pass filled every weight's .grad; free them
    # The package divides by (max + 1e-7) and resizes bilinearly; clip its last rounding error (a
    # NaN, from a model that answers NaN, stays one: it is not for this function to hide).
    return np.clip(np.asarray(maps, dtype=np.float32), 0.0, 1.0)
