"""ImageNet weights: specs agree with the libraries; files are found, verified and loaded, never downloaded."""

import dataclasses
import hashlib
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from timm.models import get_pretrained_cfg
from timm.models.vision_transformer import VisionTransformer
from torchvision import models

import zoo
from zoo.entries import IMAGENET_WEIGHTS
from zoo.weights import (ADAPTERS, WEIGHTS_ENV, CorruptWeightsError, PretrainedWeights, WeightsMismatchError,
                         WeightsUnavailableError, load_backbone, load_pretrained)

TORCHVISION_SPECS = {a: s for a, s in IMAGENET_WEIGHTS.items() if s.library == "torchvision"}
TIMM_SPECS = {a: s for a, s in IMAGENET_WEIGHTS.items() if s.library == "timm"}


@pytest.fixture(autouse=True)
def empty_caches(tmp_path, monkeypatch):
    """Every lookup place empty and inside tmp_path: no test sees this machine's real caches."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_named_by_hash(state: dict, folder: Path, stem: str) -> Path:
    """Save as torchvision does: `<stem>-<first 8 hex digits of the sha256>.pth`."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / "unnamed.pth"
    torch.save(state, scratch)
    return scratch.rename(folder / f"{stem}-{_sha256(scratch)[:8]}.pth")


def _entry_for_file(name: str, path: Path):
    """The registered entry, its spec pointing at a locally made file (a stand-in for the published one)."""
    entry = zoo.get(name)
    spec = dataclasses.replace(entry.weights, file_name=path.name, sha256=path.stem.rsplit("-", 1)[1])
    return dataclasses.replace(entry, weights=spec)


@pytest.fixture(scope="module")
def resnet18_imagenet_state():
    torch.manual_seed(0)
    return models.resnet18(weights=None).state_dict()  # 1000 classes, like the published file


def _assert_backbone_loaded(model, state, head="fc"):
    loaded = model.state_dict()
    for key, tensor in state.items():
        if not key.startswith(head + "."):
            assert torch.equal(loaded[key], tensor), key
    assert loaded[f"{head}.weight"].shape[0] == 4


# --- the specs are the libraries' -------------------------------------------------------------


@pytest.mark.parametrize("arch", TORCHVISION_SPECS)
def test_torchvision_specs_match_torchvision(arch):
    spec = TORCHVISION_SPECS[arch]
    enum_name, member = spec.identifier.split(".")
    published = getattr(getattr(torchvision.models, enum_name), member)
    assert spec.url == published.url
    assert spec.file_name == published.url.rsplit("/", 1)[1]
    assert spec.file_name.endswith(f"-{spec.sha256}.pth")  # torch.hub checks this very prefix
    transforms = published.transforms()
    assert (spec.mean, spec.std) == (tuple(transforms.mean), tuple(transforms.std))


@pytest.mark.parametrize("arch", TIMM_SPECS)
def test_timm_specs_match_timm(arch):
    spec = TIMM_SPECS[arch]
    cfg = get_pretrained_cfg(spec.identifier)
    assert cfg is not None and cfg.hf_hub_id == spec.hf_repo
    assert (spec.mean, spec.std) == (tuple(cfg.mean), tuple(cfg.std))
    assert cfg.num_classes == 1000


# --- finding and loading ----------------------------------------------------------------------


def test_imagenet_entry_loads_its_file_from_the_weights_folder(tmp_path, monkeypatch, resnet18_imagenet_state):
    path = _save_named_by_hash(resnet18_imagenet_state, tmp_path / "weights", "resnet18")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "weights"))
    model = _entry_for_file("resnet18.imagenet", path).build(input_size=64)
    _assert_backbone_loaded(model, resnet18_imagenet_state)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 4)


def test_explicit_weights_dir_comes_before_the_environment(tmp_path, monkeypatch, resnet18_imagenet_state):
    path = _save_named_by_hash(resnet18_imagenet_state, tmp_path / "explicit", "resnet18")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "elsewhere"))
    model = _entry_for_file("resnet18.imagenet", path).build(weights_dir=tmp_path / "explicit")
    _assert_backbone_loaded(model, resnet18_imagenet_state)


def test_torch_hub_cache_is_honoured(tmp_path, resnet18_imagenet_state):
    path = _save_named_by_hash(resnet18_imagenet_state, tmp_path / "torch" / "hub" / "checkpoints", "resnet18")
    model = _entry_for_file("resnet18.imagenet", path).build()
    _assert_backbone_loaded(model, resnet18_imagenet_state)


def test_resnet50_sepost_starts_from_torchvision_resnet50_with_fresh_se(tmp_path, monkeypatch):
    state = models.resnet50(weights=None).state_dict()
    path = _save_named_by_hash(state, tmp_path / "weights", "resnet50")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "weights"))
    model = _entry_for_file("resnet50_sepost.imagenet", path).build(input_size=64)
    _assert_backbone_loaded(model, state)
    assert {k for k in model.state_dict() if k not in state and not k.startswith("fc.")} == {
        k for k in model.state_dict() if ".se_post." in k}


def test_pretrained_false_reads_no_file():
    model = zoo.get("resnet18.imagenet").build(input_size=64, pretrained=False)  # no file anywhere
    assert model.fc.out_features == 4


# --- refusing -------------------------------------------------------------------------------


def test_missing_file_names_the_entry_places_and_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "weights"))
    with pytest.raises(WeightsUnavailableError) as caught:
        zoo.get("resnet50.imagenet").build()
    message = str(caught.value)
    first_line = message.splitlines()[0]
    for part in ["resnet50.imagenet", "resnet50-11ad3fa6.pth", str(tmp_path / "weights"),
                 str(tmp_path / "torch" / "hub" / "checkpoints")]:
        assert part in first_line
    assert ('python -c "import torchvision; torchvision.models.ResNet50_Weights.IMAGENET1K_V2'
            '.get_state_dict(progress=True)"') in message
    assert f'"{tmp_path / "weights"}/resnet50-11ad3fa6.pth" https://download.pytorch.org/models/resnet50-11ad3fa6.pth' \
        in message
    assert isinstance(caught.value, RuntimeError)


def test_missing_timm_file_says_how_to_fill_the_hugging_face_cache(tmp_path):
    with pytest.raises(WeightsUnavailableError) as caught:
        zoo.get("vit_b16.imagenet").build()
    message = str(caught.value)
    assert "vit_base_patch16_224.augreg_in21k_ft_in1k.safetensors" in message.splitlines()[0]
    assert str(tmp_path / "hf") in message.splitlines()[0] and f"${WEIGHTS_ENV} unset" in message
    assert "timm.create_model('vit_base_patch16_224.augreg_in21k_ft_in1k', pretrained=True)" in message


def test_file_with_the_wrong_hash_is_refused_even_with_a_good_copy_in_the_cache(
        tmp_path, monkeypatch, resnet18_imagenet_state):
    good = _save_named_by_hash(resnet18_imagenet_state, tmp_path / "torch" / "hub" / "checkpoints", "resnet18")
    entry = _entry_for_file("resnet18.imagenet", good)
    (tmp_path / "weights").mkdir()
    torch.save({"fc.weight": torch.zeros(1000, 512)}, tmp_path / "weights" / good.name)  # same name, other bytes
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "weights"))
    with pytest.raises(CorruptWeightsError, match="sha256"):
        entry.build()


def test_unreadable_file_is_refused(tmp_path):
    spec = TIMM_SPECS["seresnet50"]  # timm publishes no hash: the read itself must fail cleanly
    (tmp_path / spec.file_name).write_bytes(b"not a safetensors file")
    with pytest.raises(CorruptWeightsError, match="cannot read"):
        load_pretrained(torch.nn.Linear(2, 2), spec, "seresnet50.imagenet", weights_dir=tmp_path)


# --- the Hugging Face cache (timm) --------------------------------------------------------------

TINY_SPEC = PretrainedWeights(library="timm", identifier="tiny_test.in1k", file_name="tiny_test.in1k.safetensors",
                              sha256=None, mean=(0.5,), std=(0.5,), head="1")


def _tiny_model(classes: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, classes))


def _hf_cache_copy(hub: Path, repo: str, state: dict, blob_name: str | None = None) -> Path:
    """The layout huggingface_hub leaves: refs/main -> snapshot -> symlink to a blob named by its sha256."""
    folder = hub / f"models--{repo.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True)
    blob = folder / "blobs" / "unnamed"
    save_file(state, str(blob))
    blob = blob.rename(blob.with_name(blob_name or _sha256(blob)))
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(Path("../../blobs") / blob.name)
    return snapshot / "model.safetensors"


def test_hugging_face_cache_is_honoured_and_its_blob_hash_checked(tmp_path):
    state = _tiny_model(1000).state_dict()
    _hf_cache_copy(tmp_path / "hf", TINY_SPEC.hf_repo, state)
    model = _tiny_model(4)
    load_pretrained(model, TINY_SPEC, "tiny.imagenet")
    assert torch.equal(model[0].weight, state["0.weight"]) and model[1].out_features == 4


def test_corrupt_hugging_face_blob_is_refused(tmp_path):
    _hf_cache_copy(tmp_path / "hf", TINY_SPEC.hf_repo, _tiny_model(1000).state_dict(), blob_name="ab" * 32)
    with pytest.raises(CorruptWeightsError, match="abab"):
        load_pretrained(_tiny_model(4), TINY_SPEC, "tiny.imagenet")


# --- fitting tensors to the architecture -------------------------------------------------------


def test_leftover_tensors_on_either_side_are_errors():
    state = _tiny_model(1000).state_dict()
    with pytest.raises(WeightsMismatchError, match="unexpected 2.weight"):
        load_backbone(_tiny_model(4), {**state, "2.weight": torch.zeros(1)}, TINY_SPEC, "tiny.imagenet")
    with pytest.raises(WeightsMismatchError, match="missing 0.bias"):
        load_backbone(_tiny_model(4), {k: v for k, v in state.items() if k != "0.bias"}, TINY_SPEC, "tiny.imagenet")
    with pytest.raises(WeightsMismatchError, match="size mismatch"):
        load_backbone(_tiny_model(4), {**state, "0.weight": torch.zeros(5, 2)}, TINY_SPEC, "tiny.imagenet")


def test_densenet_files_use_legacy_names_that_the_adapter_maps():
    with torch.device("meta"):
        names = list(models.densenet121(weights=None).state_dict())
    legacy = {name.replace(".norm1.", ".norm.1.").replace(".conv2.", ".conv.2.").replace(".norm2.", ".norm.2.")
              .replace(".conv1.", ".conv.1.") if ".denselayer" in name else name: None for name in names}
    assert any(".norm.1." in key for key in legacy)
    assert list(ADAPTERS["torchvision_densenet"](legacy, None)) == names


def test_vit_position_embeddings_are_resampled_to_the_models_grid():
    tiny = {"patch_size": 16, "embed_dim": 32, "depth": 1, "num_heads": 2}
    state = VisionTransformer(img_size=32, num_classes=1000, **tiny).state_dict()  # a 2x2 grid
    model = VisionTransformer(img_size=64, num_classes=4, **tiny)  # a 4x4 grid
    load_backbone(model, state, TIMM_SPECS["vit_b16"], "vit.imagenet")
    assert model.pos_embed.shape == (1, 1 + 16, 32)
    assert torch.equal(model.pos_embed[:, 0], state["pos_embed"][:, 0])  # the class token's is kept
    assert torch.equal(model.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])
