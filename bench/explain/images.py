"""Explain image files with a loaded checkpoint: a class-activation overlay per image, and a
feature-map sheet if asked; an unreadable image gets its reason and the others are still drawn.

Probabilities come from bench.inference.predict_images, so they are the very numbers
`brainbench predict` prints; the maps are computed on the same decoded, normalized input.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.data.batches import Normalizer, to_model_input
from bench.explain.cam import check_has_gradients, class_activation_maps, reshape_transform, resolve_layer
from bench.explain.feature_maps import block_outputs, check_has_convolutions
from bench.explain.pictures import ClassMap, cam_overlay, feature_sheet
from bench.inference import LoadedModel, Prediction, decode_for, predict_images

FEATURES_SUFFIX = "_features.png"


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction  # path, probabilities (None if unreadable) and the reason it was unreadable
    overlay: Path | None = None
    feature_sheet: Path | None = None


def overlay_name(stem: str, method: str) -> str:
    # "gradcam++" -> "gradcampp": the method in the name keeps a comparison of methods side by side.
    return f"{stem}_{method.replace('+', 'p')}.png"


def _file_stems(paths: Sequence[Path]) -> list[str]:
    """Each image's file stem; a stem that repeats (same name, other folders) gets -2, -3, ... so
    that no image's pictures overwrite another's."""
    counts, seen, stems = Counter(p.stem for p in paths), Counter(), []
    for path in paths:
        seen[path.stem] += 1
        stems.append(path.stem if counts[path.stem] == 1 or seen[path.stem] == 1 else f"{path.stem}-{seen[path.stem]}")
    return stems


def explain_images(loaded: LoadedModel, paths: Sequence[Path | str], out: Path, *, method: str,
                   layer: str | None = None, true_class: str | None = None,
                   feature_maps: int = 0) -> list[Explanation]:
    """One Explanation per path, in order. `layer` overrides the entry's cam_layer; `true_class`
    (one of the checkpoint's classes) adds its map beside the predicted class's; `feature_maps` > 0
    also draws that many channels of each convolution block. Every check that can fail for the
    model as a whole runs before the first image is read."""
    entry, model, classes = loaded.entry, loaded.model, loaded.contract.classes
    check_has_gradients(entry, model)
    layer_name = layer or entry.cam_layer
    target = resolve_layer(model, layer_name, option="--layer" if layer else f"{entry.name}'s cam_layer",
                           default=entry.cam_layer)
    reshape = reshape_transform(entry.cam_reshape, model, target)
    if feature_maps:
        check_has_convolutions(entry.name, model)
    paths = [Path(p) for p in paths]
    normalize = Normalizer(loaded.contract.mean, loaded.contract.std, loaded.device)
    results = []
    for path, stem, prediction in zip(paths, _file_stems(paths), predict_images(loaded, paths)):
        if prediction.probabilities is None:
            results.append(Explanation(prediction))
            continue
        image = decode_for(loaded.preprocessing, path)  # (C, S, S) uint8, what predict_images just read
        x = to_model_input(torch.from_numpy(image)[None], normalize)
        shown = [prediction.predicted] + ([true_class] if true_class and true_class != prediction.predicted else [])
        maps = class_activation_maps(model, target, x, [classes.index(c) for c in shown], method=method,
                                     reshape=reshape, layer_name=layer_name)
        labels = [_label(c, prediction, true_class) for c in shown]
        probabilities = "  ".join(f"{c} {100 * p:.1f}%" for c, p in prediction.probabilities.items())
        title = f"{path.name}: {entry.name}, {method} at {layer_name}\n{probabilities}"
        overlay = cam_overlay(image, [ClassMap(label, cam) for label, cam in zip(labels, maps)],
                              out / overlay_name(stem, method), title=title)
        sheet = None
        if feature_maps:
            sheet = feature_sheet(image, block_outputs(model, x, feature_maps), out / f"{stem}{FEATURES_SUFFIX}",
                                  title=f"{path.name}: {entry.name}, first {feature_maps} channels of each "
                                        f"convolution block")
        results.append(Explanation(prediction, overlay, sheet))
    return results


def _label(name: str, prediction: Prediction, true_class: str | None) -> str:
    role = ("predicted = true" if name == true_class else "predicted") if name == prediction.predicted else "true"
    return f"{role}: {name} ({100 * prediction.probabilities[name]:.1f}%)"
