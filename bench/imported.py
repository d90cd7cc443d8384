"""Imported models: a user's own classifier, trained elsewhere and exported to ONNX or TorchScript,
registered from a small TOML file and benchmarked with the same metrics as zoo entries.

    name = "mynet"                      # shown as mynet.imported
    path = "mynet.onnx"                 # relative to this file; .onnx or .pt/.ts (TorchScript)
    input_size = 224
    channels = 3
    mean = [0.485, 0.456, 0.406]        # optional when scale is given
    std = [0.229, 0.224, 0.225]         # optional when scale is given
    classes = ["glioma", "meningioma", "no_tumor", "pituitary"]   # the model's output columns, in order
    source = "where the model comes from"
    layout = "nchw"                     # optional: "nchw" (default) or "nhwc" (Keras exports)
    scale = 0.00392156862745098         # optional: x = pixel * scale; default 1/255
    resize = "bilinear"                 # optional: bilinear (default), nearest, bicubic, lanczos, area

Preprocessing, exactly: each image is padded to a black square and resized to input_size with
the `resize` filter of Pillow (bilinear by default, antialiased when shrinking; another filter gets
its own decoded view of the dataset), giving uint8 pixels; then
x = pixel * scale (scale defaults to 1/255), then x = (x - mean) / std where mean/std are given;
with layout = "nhwc" the batch is handed to the model as (N, H, W, C).

ONNX models run through ONNX Runtime (CUDA provider when available, else CPU), TorchScript
models through torch.jit.load. `classes` may be any two or more distinct names: the model is
run only on a dataset whose label set has the same classes (each name matched by the dataset's
accepted spellings, so "no_tumor" means "notumor"), and its outputs are reordered to that label
set's order when it is loaded. An imported model is never trained, so a suite's recipe overrides
do not apply to it (bench/suites.py).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.data.labels import LabelSet, fold_spelling
from bench.errors import BrainbenchError
from bench.jit_deprecation import jit_deprecations_once
from zoo.entry import RESIZE_FILTERS, CheckpointRef, ZooEntry
from zoo.recipe import Recipe, RecipeError, check_recipe_value, shown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}
REQUIRED_KEYS = {"name", "path", "input_size", "channels", "classes"}
OPTIONAL_KEYS = {"mean", "std", "source", "layout", "scale", "resize"}
KEYS = REQUIRED_KEYS | OPTIONAL_KEYS
LAYOUTS = ("nchw", "nhwc")
IMPORTED_VARIANT = "imported"


class ImportedModelError(BrainbenchError):
    pass


@dataclass(frozen=True)
class ImportedModelSpec:
    name: str
    path: Path
    format: str
    input_size: int
    in_channels: int
    mean: tuple[float, ...] | None  # as declared; None when only scale is given
    std: tuple[float, ...] | None
    classes: tuple[str, ...]  # the model's output columns, spelled as the TOML spells them
    source: str
    sha256: str
    layout: str = "nchw"
    scale: float | None = None  # None: pixels / 255, the zoo's own convention
    resize: str = "bilinear"
    spec_file: Path | None = None  # the TOML file, named by errors

    def output_order(self, labels: LabelSet) -> tuple[int, ...]:
        """output_order() of this model's classes, its errors naming the TOML file."""
        return output_order(self.classes, labels, str(self.spec_file or self.path))


def load_spec(toml_path: Path | str) -> ImportedModelSpec:
    toml_path = Path(toml_path)
    try:
        data = tomllib.loads(toml_path.read_text())
    except FileNotFoundError:
        raise ImportedModelError(f"imported model file {toml_path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ImportedModelError(f"{toml_path} is not valid TOML: {error}") from None
    _check_keys(data, toml_path)
    path = _model_path(data["path"], toml_path)
    channels = _channels(data["channels"], toml_path)
    return ImportedModelSpec(
        name=_name(data["name"], toml_path), path=path, format=FORMATS[path.suffix.lower()],
        input_size=_input_size(data["input_size"], toml_path), in_channels=channels,
        mean=_stats(data, "mean", channels, toml_path), std=_stats(data, "std", channels, toml_path),
        classes=_classes(data["classes"], toml_path),
        source=_string(data, "source", f"imported model {path.name}", toml_path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        layout=_choice(data, "layout", LAYOUTS, toml_path), scale=_scale(data.get("scale"), toml_path),
        resize=_resize(data.get("resize", RESIZE_FILTERS[0]), toml_path), spec_file=toml_path)


def _check_keys(data: dict, toml_path: Path) -> None:
    # mean and std go together, and are needed unless scale alone says how to map the pixels.
    required = REQUIRED_KEYS | ({"mean", "std"} if "scale" not in data or {"mean", "std"} & set(data) else set())
    unknown, missing = set(data) - KEYS, required - set(data)
    if unknown or missing:
        raise ImportedModelError(f"{toml_path}: unknown key(s) {sorted(unknown)}, missing key(s) {sorted(missing)}; "
                                 f"required {sorted(REQUIRED_KEYS)}, mean and std unless scale is given, "
                                 f"optional {sorted(OPTIONAL_KEYS - {'mean', 'std'})}")


def _model_path(value: object, toml_path: Path) -> Path:
    if not isinstance(value, str):
        raise ImportedModelError(f"{toml_path}: path must be a string, got {shown(value)}")
    path = (toml_path.parent / value).resolve()
    if path.suffix.lower() not in FORMATS:
        raise ImportedModelError(f"{toml_path}: path {value!r} must end in one of {sorted(FORMATS)}")
    if not path.is_file():
        raise ImportedModelError(f"{toml_path}: model file {path} does not exist")
    return path


def _name(name: object, toml_path: Path) -> str:
    if not isinstance(name, str) or not name or "." in name or "/" in name:
        raise ImportedModelError(f"{toml_path}: name must be a plain word (it is shown as NAME.imported), got {name!r}")
    return name


def _input_size(value: object, toml_path: Path) -> int:
    # The same bounds as a recipe's input_size: the decoded cache is made at this size.
    try:
        checked = check_recipe_value("input_size", value, f"{toml_path}:")
    except RecipeError as error:
        raise ImportedModelError(str(error)) from None
    if checked is None:  # pragma: no cover - TOML has no null
        raise ImportedModelError(f"{toml_path}: input_size must be a whole number")
    return checked


def _channels(value: object, toml_path: Path) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value not in (1, 3):
        raise ImportedModelError(f"{toml_path}: channels must be 1 or 3, got {shown(value)}")
    return value


def _finite_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _stats(data: dict, key: str, channels: int, toml_path: Path) -> tuple[float, ...] | None:
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, list) or len(value) not in (1, channels) or not all(map(_finite_number, value)):
        raise ImportedModelError(f"{toml_path}: {key} must be a list of 1 or {channels} finite numbers, "
                                 f"got {shown(value)}")
    if key == "std" and not all(v > 0 for v in value):
        raise ImportedModelError(f"{toml_path}: std values must be positive, got {shown(value)}")
    return tuple(float(v) for v in value)


def _scale(value: object, toml_path: Path) -> float | None:
    if value is None:
        return None
    if not _finite_number(value) or not value > 0:
        raise ImportedModelError(f"{toml_path}: scale must be a positive number (e.g. 0.00392156862745098 = 1/255), "
                                 f"got {shown(value)}")
    return float(value)


def _choice(data: dict, key: str, choices: tuple[str, ...], toml_path: Path) -> str:
    value = data.get(key, choices[0])
    if not isinstance(value, str) or value not in choices:
        raise ImportedModelError(f"{toml_path}: {key} must be {' or '.join(map(shown, choices))}, got {shown(value)}")
    return value


def _resize(value: object, toml_path: Path) -> str:
    if not isinstance(value, str) or value not in RESIZE_FILTERS:
        raise ImportedModelError(f"{toml_path}: resize must be one of {', '.join(map(shown, RESIZE_FILTERS))}, "
                                 f"got {shown(value)}")
    return value


def _string(data: dict, key: str, default: str, toml_path: Path) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ImportedModelError(f"{toml_path}: {key} must be a string, got {shown(value)}")
    return value


def _classes(classes: object, toml_path: Path) -> tuple[str, ...]:
    """The declared output columns: two or more names, none empty, no two the same spelling
    ("no_tumor" and "No Tumor" are one). Which dataset they fit is decided when the model runs."""
    if (not isinstance(classes, list) or len(classes) < 2
            or not all(isinstance(c, str) and fold_spelling(c) for c in classes)):
        raise ImportedModelError(f"{toml_path}: classes must be a list of two or more class names (the model's "
                                 f"output columns, in order), got {shown(classes)}")
    folded = [fold_spelling(c) for c in classes]
    repeated = sorted({c for c, f in zip(classes, folded) if folded.count(f) > 1})
    if repeated:
        raise ImportedModelError(f"{toml_path}: classes names a class twice ({', '.join(map(repr, repeated))}), "
                                 f"got {list(classes)}")
    return tuple(classes)


def output_order(spec_classes: tuple[str, ...], dataset_labels: LabelSet,
                 where: str = "imported model") -> tuple[int, ...]:
    """order[i] = the model's output column holding dataset_labels.names[i].

    Each model class must mean one class of the dataset (any spelling the label set accepts) and
    every dataset class must have a column: a model of other classes cannot be scored on it, so
    that is an ImportedModelError naming `where` (the TOML file) and both class lists.
    """
    meant = [dataset_labels.lookup(c) for c in spec_classes]
    if None in meant or sorted(meant) != sorted(dataset_labels.names):
        why = _mismatch(spec_classes, meant, dataset_labels)
        raise ImportedModelError(f"{where}: the model's classes {list(spec_classes)} are not the dataset's "
                                 f"classes {list(dataset_labels.names)} ({why})")
    return tuple(meant.index(name) for name in dataset_labels.names)


def _mismatch(spec_classes: tuple[str, ...], meant: list[str | None], labels: LabelSet) -> str:
    """What keeps the model's columns from matching the dataset's classes one to one."""
    unmatched = [c for c, m in zip(spec_classes, meant) if m is None]
    missing = [n for n in labels.names if n not in meant]
    doubled = sorted({m for m in meant if m is not None and meant.count(m) > 1})
    parts = [f"no dataset class for {', '.join(map(repr, unmatched))}" if unmatched else "",
             f"no model column for {', '.join(map(repr, missing))}" if missing else "",
             f"several columns mean {', '.join(map(repr, doubled))}" if doubled else ""]
    return "; ".join(part for part in parts if part)


class _Reordered(nn.Module):
    """Puts the model's output columns into the dataset's class order."""

    def __init__(self, inner: nn.Module, order: tuple[int, ...]):
        super().__init__()
        self.inner = inner
        self.register_buffer("order", torch.tensor(order), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).index_select(1, self.order.to(x.device))


class _ChannelsLastInput(nn.Module):
    """Hands a (N, C, H, W) batch to a model that reads (N, H, W, C), as Keras exports do."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.permute(0, 2, 3, 1).contiguous())


class OnnxRuntimeModule(nn.Module):
    """An ONNX Runtime session behind the nn.Module interface the evaluation code expects."""

    def __init__(self, path: Path, device: torch.device):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportedModelError(f"{path} is an ONNX model but onnxruntime is not installed: "
                                     "pip install 'brainbench[onnx]'") from None
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)


def load_model(spec: ImportedModelSpec, device: torch.device | str = "cpu", *, labels: LabelSet) -> nn.Module:
    """The model, its outputs in the order of `labels` (the label set of the dataset it is run on)."""
    order = spec.output_order(labels)  # before loading: a model of other classes is refused cheaply
    device = torch.device(device)
    try:
        if spec.format == "onnx":
            inner = OnnxRuntimeModule(spec.path, device)
        else:
            with jit_deprecations_once():
                inner = torch.jit.load(str(spec.path), map_location=device)
    except ImportedModelError:
        raise
    except Exception as error:  # noqa: BLE001 - any loader failure names the file
        raise ImportedModelError(f"cannot load {spec.format} model {spec.path}: {type(error).__name__}: {error}") from None
    if spec.layout == "nhwc":
        inner = _ChannelsLastInput(inner)
    return _Reordered(inner, order).eval()


def is_imported(entry: ZooEntry) -> bool:
    return entry.variant == IMPORTED_VARIANT


def pipeline_normalization(spec: ImportedModelSpec) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std that brainbench's normalizer, which computes (pixel / 255 - m) / s, needs to
    compute the spec's (pixel * scale - mean) / std: m = mean / (255 scale), s = std / (255 scale).
    Without scale, the declared mean/std are used as they are (the zoo's own convention)."""
    if spec.scale is None:
        return spec.mean, spec.std
    factor = 255.0 * spec.scale
    mean, std = spec.mean or (0.0,), spec.std or (1.0,)
    return tuple(m / factor for m in mean), tuple(s / factor for s in std)


def imported_entry(spec: ImportedModelSpec) -> ZooEntry:
    """A zoo-shaped entry (not registered) whose builder loads the file instead of building:
    `entry.builder(device=..., labels=<the dataset's LabelSet>)`; the label set is required, since
    the model's outputs are put into its order."""
    mean, std = pipeline_normalization(spec)

    def builder(device: torch.device | str = "cpu", *, labels: LabelSet, **_) -> nn.Module:
        return load_model(spec, device, labels=labels)

    return ZooEntry(arch=spec.name, variant=IMPORTED_VARIANT, builder=builder,
                    input_size=spec.input_size, in_channels=spec.in_channels, mean=mean, std=std,
                    recipe=Recipe(), source=spec.source, resize=spec.resize, num_classes=len(spec.classes),
                    checkpoint=CheckpointRef(url_or_path=str(spec.path), sha256=spec.sha256))
