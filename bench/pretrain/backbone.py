"""Split a classifier into a feature backbone and its linear head, and put a backbone back.

The backbone IS the classifier with its head replaced by `nn.Identity`: its state-dict names are
the classifier's names minus the head's, so a pretrained backbone loads into a freshly built
classifier with a plain `load_state_dict` and a check that only head keys were left out.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BrainbenchError, CheckpointError

# Attributes that torchvision-style models apply to the flattened, pooled features.
_HEAD_ATTRIBUTES = ("fc", "classifier")


class UnsupportedBackboneError(BrainbenchError):
    """The architecture has no head that split_classifier knows how to remove."""


def _is_timm(model: nn.Module) -> bool:
    return all(hasattr(model, name) for name in ("reset_classifier", "get_classifier", "num_features"))


def _module_name(model: nn.Module, target: nn.Module) -> str | None:
    return next((name for name, module in model.named_modules() if module is target and name), None)


def _single_linear(head: nn.Module) -> nn.Linear | None:
    """The head's Linear if it is the head's only parametrised part and comes last (Dropout + Linear is fine)."""
    if isinstance(head, nn.Linear):
        return head
    if not isinstance(head, nn.Sequential) or len(head) == 0 or not isinstance(head[-1], nn.Linear):
        return None
    with_params = [m for m in head.modules() if m is not head and any(True for _ in m.parameters(recurse=False))]
    return head[-1] if with_params == [head[-1]] else None


def find_head(model: nn.Module) -> tuple[str, int]:
    """(dotted name of the head module, feature dimension it reads); the model is not changed."""
    if _is_timm(model):
        name = _module_name(model, model.get_classifier())
        if name is None:
            raise UnsupportedBackboneError(f"timm model {type(model).__name__}: its classifier is not one of its modules")
        return name, int(getattr(model, "head_hidden_size", None) or model.num_features)
    for attribute in _HEAD_ATTRIBUTES:
        head = getattr(model, attribute, None)
        linear = _single_linear(head) if isinstance(head, nn.Module) else None
        if linear is not None:
            return attribute, linear.in_features
    raise UnsupportedBackboneError(
        f"cannot split {type(model).__name__} into backbone and head: supported are timm models "
        f"(reset_classifier) and models whose {' or '.join(_HEAD_ATTRIBUTES)} is one Linear layer "
        f"(optionally after Dropout) applied to pooled features, like torchvision's ResNets"
    )


def split_classifier(model: nn.Module) -> tuple[nn.Module, int, str]:
    """(backbone mapping images to (N, D) features, D, head name). Changes `model` in place and returns it."""
    head_name, feature_dim = find_head(model)
    if _is_timm(model):
        model.reset_classifier(0)  # keeps timm's global pooling, drops only the classifier
    else:
        setattr(model, head_name, nn.Identity())
    return model, feature_dim, head_name


def is_head_key(key: str, head_name: str) -> bool:
    return key == head_name or key.startswith(head_name + ".")


def load_backbone_into(model: nn.Module, backbone_state: dict[str, torch.Tensor]) -> str:
    """Load a backbone's weights into a full classifier; everything but the head must match. Returns the head name."""
    head_name, _ = find_head(model)
    try:
        result = model.load_state_dict(backbone_state, strict=False)
    except RuntimeError as error:  # same names, other shapes: another architecture or input channels
        raise CheckpointError(f"backbone does not fit {type(model).__name__}: {str(error).splitlines()[-1]}") from None
    not_head = [k for k in result.missing_keys if not is_head_key(k, head_name)]
    if not_head or result.unexpected_keys:
        raise CheckpointError(
            f"backbone does not fit {type(model).__name__}: missing non-head keys {not_head[:5]}, "
            f"unexpected keys {result.unexpected_keys[:5]}"
        )
    return head_name
