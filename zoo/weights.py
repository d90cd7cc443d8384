"""ImageNet weights for `imagenet` entries: which file, where it is found, how it is loaded.

Nothing here downloads, and nothing falls back to random weights. The file is looked up, in order:

1. the weights folder: the `weights_dir` argument (the CLI's --weights-dir), else $BRAINBENCH_WEIGHTS,
   as `<folder>/<spec.file_name>`;
2. the library's own cache, where its pretrained=True download leaves the file: for torchvision
   `<torch.hub.get_dir()>/checkpoints/<file_name>` (honours $TORCH_HOME), for timm the Hugging
   Face hub cache (honours $HF_HUB_CACHE and $HF_HOME).

A file found in the weights folder is used or refused; a bad copy there never silently gives way
to another one. The hash is checked where one is published: torchvision names its files after
the first hex digits of their sha256, and the Hugging Face cache names each file's blob after its
sha256. Then the classifier (`spec.head`) is left at its fresh initialization for our classes and
everything else loads by name: a file tensor the model lacks, or a model tensor the file lacks
outside the head and the spec's `fresh` patterns (resnet50_sepost's `*.se_post.*`), is an error.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger("zoo")

WEIGHTS_ENV = "BRAINBENCH_WEIGHTS"
LIBRARIES = ("torchvision", "timm")
HF_FILE = "model.safetensors"  # what timm's Hugging Face repos hold


class WeightsUnavailableError(RuntimeError):
    """No usable copy of an entry's pretrained weights on this machine."""


class CorruptWeightsError(WeightsUnavailableError):
    """A weights file was found, but its hash or contents are wrong."""


class WeightsMismatchError(RuntimeError):
    """A sound weights file whose tensors do not fit the architecture: a bug in the spec or the builder."""


@dataclass(frozen=True)
class PretrainedWeights:
    """Published ImageNet weights, as data (in the spirit of torchvision's Weights and timm's PretrainedCfg)."""

    library: str  # "torchvision" or "timm"
    identifier: str  # torchvision: "ResNet50_Weights.IMAGENET1K_V2"; timm: "model.tag"
    file_name: str  # torchvision: the hub file name; timm: what to call the file in the weights folder
    sha256: str | None  # the digest or its published prefix; None where the library publishes none
    mean: tuple[float, ...]
    std: tuple[float, ...]
    head: str  # the classifier module: re-initialized for our classes, the file's tensors for it dropped
    fresh: tuple[str, ...] = ()  # shell-style patterns of parameters the weights do not cover: kept at init
    adapter: str | None = None  # name in ADAPTERS of a rewrite the file needs before it loads

    def __post_init__(self) -> None:
        if self.library not in LIBRARIES:
            raise ValueError(f"weights library must be one of {LIBRARIES}, got {self.library!r}")
        suffix = ".pth" if self.library == "torchvision" else ".safetensors"
        if not self.file_name.endswith(suffix):
            raise ValueError(f"{self.library} weights file names end in {suffix}, got {self.file_name!r}")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
            raise ValueError(f"sha256 must be 8 to 64 lowercase hex digits, got {self.sha256!r}")
        if self.adapter is not None and self.adapter not in ADAPTERS:
            raise ValueError(f"unknown weights adapter {self.adapter!r}; known: {', '.join(ADAPTERS)}")

    @property
    def url(self) -> str:
        if self.library == "torchvision":
            return f"https://download.pytorch.org/models/{self.file_name}"
        return f"https://huggingface.co/{self.hf_repo}/resolve/main/{HF_FILE}"

    @property
    def hf_repo(self) -> str:
        return f"timm/{self.identifier}"

    def fetch_command(self) -> str:
        """What a user runs on a machine with internet to put the file in the library's cache."""
        if self.library == "torchvision":
            return (f'python -c "import torchvision; '
                    f'torchvision.models.{self.identifier}.get_state_dict(progress=True)"')
        return f"python -c \"import timm; timm.create_model('{self.identifier}', pretrained=True)\""


# --- where the file may be -------------------------------------------------------------------


def weights_folder(weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The explicit weights folder: the argument, else $BRAINBENCH_WEIGHTS, else none."""
    chosen = weights_dir if weights_dir is not None else os.environ.get(WEIGHTS_ENV) or None
    return Path(chosen).expanduser() if chosen is not None else None


def torch_hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"  # get_dir reads $TORCH_HOME on every call


def hf_hub_cache() -> Path:
    # Read the environment now: huggingface_hub fixes its cache constants when first imported.
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_root).expanduser() / "huggingface" / "hub"


def _library_cache_copy(spec: PretrainedWeights) -> tuple[Path | None, str]:
    """The library cache's copy of the file (None if absent) and how to name where we looked."""
    if spec.library == "torchvision":
        folder = torch_hub_checkpoints()
        path = folder / spec.file_name
        return (path if path.is_file() else None), f"the torch hub cache {folder}"
    from huggingface_hub import try_to_load_from_cache

    cache = hf_hub_cache()
    found = try_to_load_from_cache(spec.hf_repo, HF_FILE, cache_dir=cache)
    path = Path(found) if isinstance(found, str) else None
    return path, f"the Hugging Face cache {cache} (repo {spec.hf_repo}, file {HF_FILE})"


def find_weights(spec: PretrainedWeights, entry_name: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """The file to load, by the lookup order above; WeightsUnavailableError if there is none."""
    folder = weights_folder(weights_dir)
    if folder is not None and (folder / spec.file_name).is_file():
        return folder / spec.file_name
    cached, cache_place = _library_cache_copy(spec)
    if cached is not None:
        return cached
    raise WeightsUnavailableError(_missing_message(spec, entry_name, folder, cache_place))


def _missing_message(spec: PretrainedWeights, entry_name: str, folder: Path | None, cache_place: str) -> str:
    folder_place = (f"the weights folder {folder}" if folder is not None
                    else f"a weights folder (none given: --weights-dir / ${WEIGHTS_ENV} unset)")
    cache_name = "torch hub cache" if spec.library == "torchvision" else "Hugging Face cache"
    hand_target = f"{folder or '$' + WEIGHTS_ENV}/{spec.file_name}"
    return "\n".join([
        f"{entry_name}: ImageNet weights {spec.file_name} ({spec.library} {spec.identifier}) not found "
        f"in {folder_place} or {cache_place}; brainbench never downloads them itself",
        "To fetch them, on a machine with internet either fill its library cache:",
        f"  {spec.fetch_command()}",
        f"  and copy its {cache_name} folder to this machine (or the file, named {spec.file_name}, into the "
        "weights folder); or download the file straight into the weights folder:",
        f'  curl -L -o "{hand_target}" {spec.url}',
        f"Point brainbench at that folder with --weights-dir DIR or {WEIGHTS_ENV}=DIR.",
    ])


# --- checking and reading the file -----------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, spec: PretrainedWeights, entry_name: str) -> None:
    """Refuse a file whose sha256 differs from the published one (or, in the HF cache, its blob name)."""
    expected = spec.sha256
    blob = path.resolve().name
    if expected is None and re.fullmatch(r"[0-9a-f]{64}", blob):
        expected = blob  # the Hugging Face cache stores each file under its sha256
    if expected is None:
        return
    actual = file_sha256(path)
    if not actual.startswith(expected):
        raise CorruptWeightsError(
            f"{entry_name}: weights file {path} is corrupt or not the published one: its sha256 is "
            f"{actual}, expected one starting {expected}; delete it and fetch it again with: {spec.fetch_command()}")


def read_state_dict(path: Path, entry_name: str) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - a truncated or foreign file fails in many ways
        raise CorruptWeightsError(f"{entry_name}: cannot read weights file {path}: {error}") from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CorruptWeightsError(f"{entry_name}: weights file {path} holds no plain state dict of tensors")
    return dict(state)


# --- fitting the tensors to the model --------------------------------------------------------


def _torchvision_densenet(state: dict, model: nn.Module) -> dict:
    """DenseNet files predate the ban on dots in module names: `norm.1` means today's `norm1`."""
    del model
    old = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")
    return {old.sub(r"\1\2.", key): value for key, value in state.items()}


def _timm_vit_pos_embed(state: dict, model: nn.Module) -> dict:
    """Resample 224 px position embeddings to a ViT built for another input size, as timm does."""
    from timm.layers import resample_abs_pos_embed

    posemb = state.get("pos_embed")
    if posemb is None or posemb.shape == model.pos_embed.shape:
        return state
    prefix = 0 if getattr(model, "no_embed_class", False) else model.num_prefix_tokens
    resampled = resample_abs_pos_embed(posemb, new_size=list(model.patch_embed.grid_size), num_prefix_tokens=prefix)
    return {**state, "pos_embed": resampled}


ADAPTERS: dict[str, Callable[[dict, nn.Module], dict]] = {
    "torchvision_densenet": _torchvision_densenet,
    "timm_vit_pos_embed": _timm_vit_pos_embed,
}


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def load_backbone(model: nn.Module, state: dict[str, torch.Tensor], spec: PretrainedWeights, entry_name: str,
                  source: Path | str = "the weights file") -> None:
    """Load everything but the head; anything else left over on either side is an error."""
    model.get_submodule(spec.head)  # a head path naming nothing would silently keep the 1000-class one
    if spec.adapter:
        state = ADAPTERS[spec.adapter](state, model)
    state = {k: v for k, v in state.items() if not _under(k, (spec.head,))}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches raise even with strict=False
        raise WeightsMismatchError(f"{entry_name}: {source} does not fit the architecture: {error}") from error
    missing = [k for k in result.missing_keys
               if not _under(k, (spec.head,)) and not any(fnmatch.fnmatchcase(k, p) for p in spec.fresh)]
    if missing or result.unexpected_keys:
        raise WeightsMismatchError(
            f"{entry_name}: {source} does not fit the architecture: "
            f"missing {_short(missing)}, unexpected {_short(result.unexpected_keys)}")


def _short(keys: list[str], shown: int = 5) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def load_pretrained(model: nn.Module, spec: PretrainedWeights, entry_name: str,
                    weights_dir: str | os.PathLike | None = None) -> Path:
    """Find, verify and load `spec`'s weights into `model` (all but its head); the file used."""
    path = find_weights(spec, entry_name, weights_dir)
    verify_file(path, spec, entry_name)
    load_backbone(model, read_state_dict(path, entry_name), spec, entry_name, source=path)
    log.info("%s: ImageNet weights loaded from %s", entry_name, path)
    return path
