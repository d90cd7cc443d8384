"""External checkpoints: a user's own 4-class classifier, exported to ONNX or TorchScript,
registered from a small TOML file and benchmarked with the same metrics as zoo entries.

    name = "mynet"                      # shown as mynet.external
    path = "mynet.onnx"                 # relative to this file; .onnx or .pt/.ts (TorchScript)
    input_size = 224
    channels = 3
    mean = [0.485, 0.456, 0.406]
    std = [0.229, 0.224, 0.225]
    classes = ["glioma", "meningioma", "no_tumor", "pituitary"]   # the model's output order
    source = "where the model comes from"

ONNX models run through ONNX Runtime (CUDA provider when available, else CPU), TorchScript
models through torch.jit.load. Outputs are reordered to brainbench's class order.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.data.labels import CLASS_NAMES, normalize_class_name
from bench.errors import BrainbenchError
from zoo.entry import CheckpointRef, ZooEntry
from zoo.recipe import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMATS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}
KEYS = {"name", "path", "input_size", "channels", "mean", "std", "classes", "source"}


class ExternalModelError(BrainbenchError):
    pass


@dataclass(frozen=True)
class ExternalModelSpec:
    name: str
    path: Path
    format: str
    input_size: int
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    order: tuple[int, ...]  # order[i] = the model's output column holding CLASS_NAMES[i]
    source: str
    sha256: str


def load_spec(toml_path: Path | str) -> ExternalModelSpec:
    toml_path = Path(toml_path)
    try:
        data = tomllib.loads(toml_path.read_text())
    except FileNotFoundError:
        raise ExternalModelError(f"external model file {toml_path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ExternalModelError(f"{toml_path} is not valid TOML: {error}") from None
    unknown, missing = set(data) - KEYS, KEYS - {"source"} - set(data)
    if unknown or missing:
        raise ExternalModelError(f"{toml_path}: unknown key(s) {sorted(unknown)}, missing key(s) {sorted(missing)}; "
                                 f"expected {sorted(KEYS)}")
    path = (toml_path.parent / data["path"]).resolve()
    if path.suffix.lower() not in FORMATS:
        raise ExternalModelError(f"{toml_path}: path {data['path']!r} must end in one of {sorted(FORMATS)}")
    if not path.is_file():
        raise ExternalModelError(f"{toml_path}: model file {path} does not exist")
    return ExternalModelSpec(
        name=_name(data["name"], toml_path), path=path, format=FORMATS[path.suffix.lower()],
        input_size=int(data["input_size"]), in_channels=int(data["channels"]),
        mean=tuple(map(float, data["mean"])), std=tuple(map(float, data["std"])),
        order=_class_order(data["classes"], toml_path), source=str(data.get("source", f"external model {path.name}")),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def _name(name: object, toml_path: Path) -> str:
    if not isinstance(name, str) or not name or "." in name or "/" in name:
        raise ExternalModelError(f"{toml_path}: name must be a plain word (it is shown as NAME.external), got {name!r}")
    return name


def _class_order(classes: object, toml_path: Path) -> tuple[int, ...]:
    try:
        normalized = [normalize_class_name(c) for c in classes]
    except (TypeError, BrainbenchError) as error:
        raise ExternalModelError(f"{toml_path}: classes: {error}") from None
    if sorted(normalized) != sorted(CLASS_NAMES):
        raise ExternalModelError(f"{toml_path}: classes must name each of {', '.join(CLASS_NAMES)} once, "
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


class OnnxRuntimeModule(nn.Module):
    """An ONNX Runtime session behind the nn.Module interface the evaluation code expects."""

    def __init__(self, path: Path, device: torch.device):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise ExternalModelError(f"{path} is an ONNX model but onnxruntime is not installed: "
                                     "pip install 'brainbench[onnx]'") from None
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)


def load_model(spec: ExternalModelSpec, device: torch.device | str = "cpu") -> nn.Module:
    device = torch.device(device)
    try:
        if spec.format == "onnx":
            inner = OnnxRuntimeModule(spec.path, device)
        else:
            inner = torch.jit.load(str(spec.path), map_location=device)
    except ExternalModelError:
        raise
    except Exception as error:  # noqa: BLE001 - any loader failure names the file
        raise ExternalModelError(f"cannot load {spec.format} model {spec.path}: {type(error).__name__}: {error}") from None
    return _Reordered(inner, spec.order).eval()


def external_entry(spec: ExternalModelSpec) -> ZooEntry:
    """A zoo-shaped entry (not registered) whose builder loads the file instead of building."""
    return ZooEntry(arch=spec.name, variant="external", builder=lambda device="cpu", **_: load_model(spec, device),
                    input_size=spec.input_size, in_channels=spec.in_channels, mean=spec.mean, std=spec.std,
                    recipe=Recipe(), source=spec.source,
                    checkpoint=CheckpointRef(url_or_path=str(spec.path), sha256=spec.sha256))
