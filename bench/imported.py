"""Imported models: a user's own 4-class classifier, trained elsewhere and exported to ONNX or TorchScript,
registered from a small TOML file and benchmarked with the same metrics as zoo entries.

    name = "mynet"                      # shown as mynet.imported
    path = "mynet.onnx"                 # relative to this file; .onnx or .pt/.ts (TorchScript)
    input_size = 224
    channels = 3
    mean = [0.485, 0.456, 0.406]        # optional when scale is given
    std = [0.229, 0.224, 0.225]         # optional when scale is given
    classes = ["glioma", "meningioma", "no_tumor", "pituitary"]   # the model's output order
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
models through torch.jit.load. Outputs are reordered to brainbench's class order. An imported
model is never trained, so a suite's recipe overrides do not apply to it (bench/suites.py).
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

from bench.data.labels import CLASS_NAMES, normalize_class_name
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
    order: tuple[int, ...]  # order[i] = the model's output column holding CLASS_NAMES[i]
    source: str
    sha256: str
    layout: str = "nchw"
    scale: float | None = None  # None: pixels / 255, the zoo's own convention
    resize: str = "bilinear"


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
        order=_class_order(data["classes"], toml_path),
        source=_string(data, "source", f"imported model {path.name}", toml_path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        layout=_choice(data, "layout", LAYOUTS, toml_path), scale=_scale(data.get("scale"), toml_path),
        resize=_resize(data.get("resize", RESIZE_FILTERS[0]), toml_path))


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


def _class_order(classes: object, toml_path: Path) -> tuple[int, ...]:
    try:
        normalized = [normalize_class_name(c) for c in classes]
    except (TypeError, BrainbenchError) as error:
        raise ImportedModelError(f"{toml_path}: classes: {error}") from None
    if sorted(normalized) != sorted(CLASS_NAMES):
        raise ImportedModelError(f"{toml_path}: classes must name each of {', '.join(CLASS_NAMES)} once, "
                                 f"got {list(classes)}")
    return tuple(normalized.index(name) for name in CLASS_NAMES)


class _Reordered(nn.Module):
    """Puts the model's output columns into brainbench's class order."""

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


def load_model(spec: ImportedModelSpec, device: torch.device | str = "cpu") -> nn.Module:
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
    return _Reordered(inner, spec.order).eval()


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
    """A zoo-shaped entry (not registered) whose builder loads the file instead of building."""
    mean, std = pipeline_normalization(spec)
    return ZooEntry(arch=spec.name, variant=IMPORTED_VARIANT, builder=lambda device="cpu", **_: load_model(spec, device),
                    input_size=spec.input_size, in_channels=spec.in_channels, mean=mean, std=std,
                    recipe=Recipe(), source=spec.source, resize=spec.resize,
                    checkpoint=CheckpointRef(url_or_path=str(spec.path), sha256=spec.sha256))
