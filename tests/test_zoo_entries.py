"""The library architectures and their variants: parameter counts, small-input runs, SE placement."""

import dataclasses

import pytest
import timm
import torch
from torchvision import models

import zoo
from zoo.architectures.se_resnets import SE_REDUCTION
from zoo.entries import ARCHITECTURES, IMAGENET_WEIGHTS, MOCO_ARCHITECTURES
from zoo.entry import MRI_NORMALIZATION, ZooEntry

LIBRARY_ARCHS = [a.name for a in ARCHITECTURES]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny forward passes gain nothing from a second thread, and when the cores are busy with
    other work, OpenMP threads waiting on each other make them up to a hundred times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_count(build, **kwargs) -> int:
    with torch.device("meta"):  # counts without allocating or initializing 138 M VGG weights
        return _count(build(**kwargs))


def _arch(name: str):
    return next(a for a in ARCHITECTURES if a.name == name)


def _ours_at_imagenet_shape(name: str) -> int:
    return _meta_count(_arch(name).builder, num_classes=1000, in_channels=3, input_size=224, dropout=None)


def _bottleneck_widths() -> list[int]:
    """Output channels of ResNet-50's 16 bottlenecks: 3 x 256, 4 x 512, 6 x 1024, 3 x 2048."""
    return [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3


def _se_params(channels: int) -> int:
    hidden = channels // SE_REDUCTION
    return channels * hidden + hidden + hidden * channels + channels  # two 1x1 convs with bias


# The libraries' own counts for their 1000-class, 3-channel models.
def _reference_count(name: str) -> int:
    torchvision_weights = {
        "alexnet": models.AlexNet_Weights.IMAGENET1K_V1, "vgg16": models.VGG16_Weights.IMAGENET1K_V1,
        "resnet18": models.ResNet18_Weights.IMAGENET1K_V1, "resnet50": models.ResNet50_Weights.IMAGENET1K_V2,
        "densenet121": models.DenseNet121_Weights.IMAGENET1K_V1,
        "mobilenetv2": models.MobileNet_V2_Weights.IMAGENET1K_V2,
        "efficientnetv2_s": models.EfficientNet_V2_S_Weights.IMAGENET1K_V1,
        "swin_t": models.Swin_T_Weights.IMAGENET1K_V1,
    }
    if name in torchvision_weights:
        return torchvision_weights[name].meta["num_params"]
    if name == "resnet50_sepost":
        return torchvision_weights["resnet50"].meta["num_params"] + sum(map(_se_params, _bottleneck_widths()))
    timm_name = {"seresnet50": "seresnet50", "vit_b16": "vit_base_patch16_224"}.get(name)
    if timm_name:
        return _meta_count(timm.create_model, model_name=timm_name, pretrained=False)
    assert name == "vit_small"  # timm's ViT-S/16 at half depth and 128 px
    return _meta_count(timm.create_model, model_name="vit_small_patch16_224", pretrained=False, depth=6, img_size=128)


@pytest.mark.parametrize("name", LIBRARY_ARCHS)
def test_parameter_count_matches_the_librarys_model(name):
    size = _arch(name).input_size
    ours = _meta_count(_arch(name).builder, num_classes=1000, in_channels=3, input_size=size, dropout=None)
    assert ours == _reference_count(name)


def test_se_resnets_differ_only_in_where_the_se_unit_sits():
    # Same SE units (one per bottleneck, over its output channels), placed differently.
    assert _ours_at_imagenet_shape("resnet50_sepost") == _ours_at_imagenet_shape("seresnet50")


def _first_conv_in_channels(model: torch.nn.Module) -> int:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)).in_channels


LEARNED = [n for n in zoo.names() if not n.startswith("knn.")]  # knn.pixels: tests/test_knn_pixels.py


@pytest.mark.parametrize("name", LEARNED)
def test_every_entry_runs_at_a_small_input(name):
    entry = zoo.get(name)
    model = entry.build(input_size=64, pretrained=False).eval()  # ImageNet loading: tests/test_weights.py
    assert _first_conv_in_channels(model) == entry.in_channels
    with torch.no_grad():
        out = model(torch.randn(2, entry.in_channels, 64, 64))
    # A classifier answers one logit per class; a segmenter one mask logit per pixel.
    assert out.shape == ((2, 4) if entry.task == "classification" else (2, 1, 64, 64))
    assert torch.isfinite(out).all()


def test_variants_are_the_ones_the_studies_compare():
    for arch in LIBRARY_ARCHS:
        assert zoo.get(f"{arch}.scratch").in_channels == 1
    assert sorted(n.split(".")[0] for n in zoo.names("*.imagenet")) == sorted(set(LIBRARY_ARCHS) - {"vit_small"})
    assert zoo.names("*.mocov2") == ["resnet18.mocov2", "resnet50.mocov2", "resnet50_sepost.mocov2",
                                     "seresnet50.mocov2"]
    assert not zoo.names("cnn*.imagenet") and not zoo.names("vit_small.imagenet")
    for entry in zoo.entries("*.imagenet"):
        assert entry.in_channels == 3 and entry.weights is IMAGENET_WEIGHTS[entry.arch]
        assert (entry.mean, entry.std) == (entry.weights.mean, entry.weights.std)
    for entry in zoo.entries("*.mocov2"):
        assert entry.pretraining is MOCO_ARCHITECTURES[entry.arch] and entry.in_channels == 1
    assert zoo.get("vit_small.scratch").input_size == 128


def test_resnet18_mocov2_pretrains_at_cpu_size():
    moco = zoo.get("resnet18.mocov2").pretraining
    assert moco.input_size == 64 and moco.epochs <= 20


def test_every_entry_names_its_source():
    for entry in zoo.entries():
        assert len(entry.source) > 20, entry.name
    assert "SE-POST" in zoo.get("resnet50_sepost.scratch").source
    assert "MoCo v2" in zoo.get("resnet50.mocov2").source


def test_torchvision_resnet50_weights_load_into_resnet50_sepost_leaving_only_se_missing():
    reference = models.resnet50(weights=None).state_dict()
    sepost = _arch("resnet50_sepost").builder(num_classes=1000, in_channels=3, input_size=64, dropout=None)
    result = sepost.load_state_dict(reference, strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys and all(".se_post." in key for key in result.missing_keys)
    assert len(result.missing_keys) == 16 * 4  # per bottleneck: reduce and expand, weight and bias
    for key, tensor in reference.items():
        assert torch.equal(sepost.state_dict()[key], tensor), key


def test_sepost_gates_the_block_output_after_the_addition():
    block = _arch("resnet50_sepost").builder(num_classes=4, in_channels=3, input_size=64, dropout=None).layer1[0]
    block.eval()
    x = torch.randn(1, 64, 16, 16)
    with torch.no_grad():
        torch.nn.init.zeros_(block.se_post.expand.weight)
        torch.nn.init.zeros_(block.se_post.expand.bias)  # every gate sigmoid(0) = 0.5
        gated = block(x)
        plain = models.resnet.Bottleneck.forward(block, x)  # addition and ReLU, no SE
    # SE inside the residual branch would give 0.5 * branch + identity instead.
    torch.testing.assert_close(gated, 0.5 * plain)


def test_seresnet50_keeps_se_inside_the_bottleneck():
    model = zoo.get("seresnet50.scratch").build(input_size=64)
    assert hasattr(model.layer1[0], "se") and not hasattr(model.layer1[0], "se_post")


def test_param_count_is_counted_without_weights_and_matches_a_real_build():
    entry = zoo.get("cnn1.scratch")
    assert entry.param_count() == _count(entry.build())
    assert zoo.get("vgg16.imagenet").param_count() == _reference_count("vgg16") - 4096 * 996 - 996


@pytest.mark.parametrize("name, size, message", [
    ("vit_small.scratch", 100, "multiple of 16"), ("vit_b16.imagenet", 72, "multiple of 16"),
    ("alexnet.scratch", 48, "at least 63"), ("swin_t.scratch", 16, "at least 32"),
])
def test_input_sizes_an_architecture_cannot_take_are_named(name, size, message):
    with pytest.raises(ValueError, match=message):
        zoo.get(name).build(input_size=size, pretrained=False)


def test_dropout_override_goes_before_the_head():
    resnet = zoo.get("resnet50.scratch").build(input_size=64, dropout=0.3)
    assert isinstance(resnet.fc[0], torch.nn.Dropout) and resnet.fc[0].p == 0.3
    alexnet = zoo.get("alexnet.scratch").build(input_size=64, dropout=0.2)  # torchvision's own classifier dropout
    assert [m.p for m in alexnet.classifier if isinstance(m, torch.nn.Dropout)] == [0.2, 0.2]


def test_imagenet_entries_must_take_rgb_with_their_weights_statistics():
    entry = zoo.get("resnet18.imagenet")
    with pytest.raises(ValueError, match="3 channels"):
        dataclasses.replace(entry, in_channels=1, mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1])
    with pytest.raises(ValueError, match="mean/std"):
        dataclasses.replace(entry, mean=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="weights spec"):
        ZooEntry(arch="x", variant="imagenet", builder=entry.builder, input_size=32, in_channels=3,
                 mean=entry.mean, std=entry.std, recipe=entry.recipe, source="test")
