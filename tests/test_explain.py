"""`brainbench explain` and bench/explain/: class-activation overlays and feature maps of stored checkpoints."""

import functools
import re

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from bench.cli import main
from bench.data.batches import Normalizer, to_model_input
from bench.data.declaration import default_labels
from bench.explain import ExplainError
from bench.explain.cam import METHODS, class_activation_maps, reshape_transform, resolve_layer
from bench.explain.feature_maps import block_outputs, check_has_convolutions
from bench.identity import InputContract
from bench.inference import decode_for, latest_checkpoint, load_checkpoint
from bench.paths import EMBEDDED_DATASET
from bench.train.store import CheckpointKey, CheckpointStore

CLASS_NAMES = default_labels().names
IMAGES = [sorted((EMBEDDED_DATASET / "Testing" / c).iterdir())[0] for c in ("glioma", "meningioma")]
RESNET_SIZE = 64  # ResNet-18's layer4 is then a 2x2 map, the smallest that is a map at all


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny passes gain nothing from a second thread, and a busy machine makes OpenMP threads wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with cnn0.scratch trained by `brainbench train` (1 epoch, 32 px, the embedded mini
    dataset) and an untrained resnet18.scratch saved as a checkpoint (training adds nothing here)."""
    root = tmp_path_factory.mktemp("explain")
    argv = ["train", "cnn0.scratch", "--epochs", "1", "--input-size", "32", "--augment", "none", "--device", "cpu",
            "--data", str(EMBEDDED_DATASET), "--store", str(root / "store"), "--cache", str(root / "cache")]
    assert main(argv) == 0
    entry = zoo.get("resnet18.scratch")
    torch.manual_seed(0)
    model = entry.build(input_size=RESNET_SIZE, num_classes=len(CLASS_NAMES), pretrained=False).eval()
    contract = InputContract(RESNET_SIZE, entry.in_channels, tuple(entry.mean), tuple(entry.std), tuple(CLASS_NAMES))
    CheckpointStore(root / "store").save(
        CheckpointKey(entry.name, "0123456789ab", "untrained"), model.state_dict(),
        {"input_contract": contract.record(), "recipe": {"dropout": None}, "best_val": {"acc": 0.25},
         "environment": {"date": "2024-05-01T10:00:00+00:00"}})
    return root / "store"


def _explain(store, *argv) -> int:
    return main(["explain", *argv, "--store", str(store), "--device", "cpu"])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("brainbench: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _is_png(path) -> bool:
    with Image.open(path) as image:
        return image.format == "PNG" and min(image.size) > 100


@pytest.mark.parametrize("name", ["cnn0.scratch", "resnet18.scratch"])
def test_explain_writes_an_overlay_per_image(store, tmp_path, capsys, name):
    out = tmp_path / "out"
    assert _explain(store, name, *map(str, IMAGES), "--out", str(out), "--true", "glioma") == 0
    printed = capsys.readouterr().out
    for image in IMAGES:
        overlay = out / f"{image.stem}_gradcam.png"
        assert _is_png(overlay)
        assert re.search(rf"{re.escape(image.name)}\s+\S+\s+[\d.]+\s+[\d.]+\s+{re.escape(str(overlay))}", printed)
    assert "glioma %" in printed and str(latest_checkpoint(store, name)) in printed


def test_layer_and_method_options_are_used(store, tmp_path):
    out = tmp_path / "out"
    assert _explain(store, "resnet18.scratch", str(IMAGES[0]), "--out", str(out), "--layer", "layer3",
                    "--method", "gradcam++") == 0
    assert _is_png(out / f"{IMAGES[0].stem}_gradcampp.png")  # '+' kept out of file names


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_finite_maps_in_0_1_of_the_image_size(store, method):
    loaded = load_checkpoint(latest_checkpoint(store, "cnn0.scratch"))
    image = decode_for(loaded.preprocessing, IMAGES[0])
    x = to_model_input(torch.from_numpy(image)[None], Normalizer(loaded.contract.mean, loaded.contract.std,
                                                                 loaded.device))
    layer = resolve_layer(loaded.model, loaded.entry.cam_layer)
    maps = class_activation_maps(loaded.model, layer, x, [0, 3], method=method, layer_name=loaded.entry.cam_layer)
    assert maps.shape == (2, *image.shape[1:]) == (2, 32, 32)
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0


def test_an_unknown_layer_lists_valid_ones(store, capsys):
    assert _explain(store, "resnet18.scratch", str(IMAGES[0]), "--layer", "layer9") == 2
    err = _one_line_error(capsys)
    assert "--layer layer9: no such module" in err
    assert "valid layers: layer4, conv1, layer1, layer1.0" in err  # the default first


def test_an_unknown_method_lists_valid_ones(capsys):
    assert main(["explain", "cnn0.scratch", str(IMAGES[0]), "--method", "gradcam+++"]) == 2
    assert f"--method gradcam+++: unknown; valid methods: {', '.join(METHODS)}" in _one_line_error(capsys)


@pytest.mark.parametrize("name, message", [
    ("knn.pixels", "knn.pixels has no layer to explain"),
    ("classic_unet.scratch", "classic_unet.scratch is a segmentation entry"),
])
def test_entries_without_class_activation_maps_are_refused(name, message, capsys):
    assert main(["explain", name, str(IMAGES[0])]) == 2  # refused before any checkpoint is looked for
    assert message in _one_line_error(capsys)


def test_an_unreadable_image_is_a_row_and_the_others_are_written(store, tmp_path, capsys):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not a jpeg at all")
    out = tmp_path / "out"
    assert _explain(store, "cnn0.scratch", str(garbage), str(IMAGES[0]), "--out", str(out)) == 1
    captured = capsys.readouterr()
    assert re.search(r"garbage\.jpg\s+unreadable: cannot decode image", captured.out)
    assert _is_png(out / f"{IMAGES[0].stem}_gradcam.png")
    assert not (out / "garbage_gradcam.png").exists()
    assert "1 of 2 image(s) could not be read" in captured.err


def test_feature_maps_write_a_sheet(store, tmp_path, capsys):
    out = tmp_path / "out"
    assert _explain(store, "cnn0.scratch", str(IMAGES[0]), "--out", str(out), "--feature-maps", "4") == 0
    sheet = out / f"{IMAGES[0].stem}_features.png"
    assert _is_png(sheet) and str(sheet) in capsys.readouterr().out


def test_feature_map_blocks_are_the_stages_of_a_cnn():
    model = zoo.get("resnet18.scratch").build(input_size=RESNET_SIZE, pretrained=False).eval()
    blocks = block_outputs(model, torch.randn(1, 1, RESNET_SIZE, RESNET_SIZE), 3)
    assert [(b.name, b.channels, b.maps.shape) for b in blocks] == [
        ("relu", 64, (3, 32, 32)), ("layer1", 64, (3, 16, 16)), ("layer2", 128, (3, 8, 8)),
        ("layer3", 256, (3, 4, 4)), ("layer4", 512, (3, 2, 2))]


def test_a_transformer_has_no_feature_maps():
    with pytest.raises(ExplainError, match="vit_small.scratch has no convolution layers"):
        check_has_convolutions("vit_small.scratch", zoo.get("vit_small.scratch").build(input_size=32, pretrained=False))


# --- every classifier of the zoo ------------------------------------------------------------------

CLASSIFIERS = [n for n in zoo.names() if zoo.get(n).task == "classification" and zoo.get(n).variant != "pixels"]
SIZES = range(16, 257, 16)  # multiples of 16: the ViTs cut 16 px patches


@functools.cache
def _cam_at_smallest_size(builder, in_channels: int, cam_layer: str, cam_reshape: str | None):
    """Maps of two classes at the smallest input where the layer's map is at least 2x2 (1x1 would be
    a constant, not a map): entries of one architecture share the builder, so it is built once."""
    for size in SIZES:
        torch.manual_seed(0)
        try:
            model = builder(num_classes=4, in_channels=in_channels, input_size=size, dropout=None).eval()
        except ValueError:  # too small for the builder
            continue
        layer = resolve_layer(model, cam_layer, option="cam_layer")
        reshape = reshape_transform(cam_reshape, model, layer)
        seen = []
        handle = layer.register_forward_hook(lambda m, i, o: seen.append((reshape or (lambda t: t))(o).shape))
        x = torch.randn(1, in_channels, size, size)
        try:
            with torch.no_grad():
                model(x)
        except RuntimeError:  # a feature map empties on the way
            continue
        finally:
            handle.remove()
        if min(seen[-1][-2:]) >= 2:
            maps = class_activation_maps(model, layer, x, [0, 1], reshape=reshape, layer_name=cam_layer)
            return size, maps
    raise AssertionError(f"{cam_layer} gives no 2x2 map at any of {list(SIZES)} px")


def test_every_classifier_names_a_cam_layer():
    assert [n for n in CLASSIFIERS if zoo.get(n).cam_layer is None] == []


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_cam_layer_of_every_classifier_resolves_and_gives_a_map(name):
    entry = zoo.get(name)
    size, maps = _cam_at_smallest_size(entry.builder, entry.in_channels, entry.cam_layer, entry.cam_reshape)
    assert maps.shape == (2, size, size)
    assert np.isfinite(maps).all() and maps.min() >= 0.0 and maps.max() <= 1.0
