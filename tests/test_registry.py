import pytest
import torch

import zoo
from zoo.entry import MRI_NORMALIZATION, ZooEntry
from zoo.recipe import Recipe
from zoo.registry import UnknownEntryError, parse_name, register

# The seed study's table: parameter counts at input 3x256x256.
STUDY_PARAM_COUNTS = {"cnn0": 33_488, "cnn1": 266_364, "cnn2": 146_860, "cnn3": 9_369_668}


@pytest.mark.parametrize("arch, expected", STUDY_PARAM_COUNTS.items())
def test_custom_cnn_parameter_counts_match_the_study(arch, expected):
    model = zoo.get(f"{arch}.scratch").build(input_size=256)
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("arch", STUDY_PARAM_COUNTS)
@pytest.mark.parametrize("size", [64, 128, 100])
def test_custom_cnn_flatten_width_follows_input_size(arch, size):
    model = zoo.get(f"{arch}.scratch").build(input_size=size)
    assert model(torch.zeros(2, 3, size, size)).shape == (2, 4)


def test_custom_cnn_layout_is_the_studys():
    cnn2 = zoo.get("cnn2.scratch").build(input_size=256)
    kinds = [type(m).__name__ for m in cnn2]
    # five conv blocks, then dropout *before* the flatten, ReLU between the linear layers
    assert kinds[:15] == ["Conv2d", "ReLU", "MaxPool2d"] * 5
    assert kinds[15:] == ["Dropout", "Flatten", "Linear", "ReLU", "Linear"]
    assert all(m.kernel_size == (3, 3) and m.stride == (1, 1) and m.padding == (1, 1)
               for m in cnn2 if isinstance(m, torch.nn.Conv2d))
    cnn3 = zoo.get("cnn3.scratch").build(input_size=256)
    assert [type(m).__name__ for m in cnn3][15:] == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    assert cnn3[18].p == 0.5


def test_required_entries_are_registered():
    for name in ["resnet18.scratch", "mobilenetv2.scratch", "cnn0.scratch", "cnn1.scratch", "cnn2.scratch",
                 "cnn3.scratch"]:
        assert zoo.get(name).name == name


@pytest.mark.parametrize("name", zoo.names())
def test_every_entry_builds_and_runs_at_its_input(name):
    # On the meta device: shapes are computed without allocating VGG's or ViT-B's weights, and
    # without ImageNet files. tests/test_zoo_entries.py runs every entry for real at a small
    # input; tests/test_weights.py loads ImageNet weights.
    entry = zoo.get(name)
    shape = (1, entry.in_channels, entry.input_size, entry.input_size)
    if entry.variant == "pixels":  # a reference model predicts only after it has been fitted
        model = entry.build().fit(torch.randn(8, *shape[1:]), torch.arange(8) % entry.num_classes)
        out = model(torch.zeros(shape))
    else:
        with torch.device("meta"):
            model = entry.build(pretrained=False).eval()
            out = model(torch.zeros(shape))
    expected = (1, entry.num_classes) if entry.task == "classification" else (1, entry.num_classes, *shape[2:])
    assert out.shape == expected


def test_single_channel_entries_take_one_channel():
    entry = zoo.get("resnet18.scratch")
    assert entry.in_channels == 1
    assert entry.build().conv1.in_channels == 1


def test_duplicate_name_is_an_error():
    entry = zoo.get("cnn0.scratch")
    with pytest.raises(ValueError, match="registered twice"):
        register(entry)


def test_unknown_entry_names_the_entry_and_suggests():
    with pytest.raises(UnknownEntryError, match="cnn9.scratch"):
        zoo.get("cnn9.scratch")


@pytest.mark.parametrize("bad", ["cnn3", "cnn3.", ".scratch", "a.b.c"])
def test_parse_name_rejects_malformed_names(bad):
    with pytest.raises(ValueError, match="arch.variant"):
        parse_name(bad)


def test_names_filter_with_wildcards():
    assert zoo.names("cnn*") == ["cnn0.scratch", "cnn1.scratch", "cnn2.scratch", "cnn3.scratch"]
    assert "resnet18.scratch" in zoo.names("*.scratch")


def test_entry_validates_its_fields():
    with pytest.raises(ValueError, match="variant"):
        ZooEntry(arch="x", variant="pretrained", builder=lambda **k: None, input_size=32, in_channels=1,
                 mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1], recipe=Recipe(), source="test")
    with pytest.raises(ValueError, match="in_channels"):
        ZooEntry(arch="x", variant="scratch", builder=lambda **k: None, input_size=32, in_channels=2,
                 mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1], recipe=Recipe(), source="test")


def test_recipe_hash_is_stable_and_sensitive():
    assert Recipe().hash() == Recipe().hash()
    assert Recipe().hash() != Recipe(epochs=11).hash()
    assert Recipe().with_overrides(lr=0.01).lr == 0.01


@pytest.mark.parametrize("overrides, message", [
    ({"optimizer": "lion"}, "optimizer"), ({"scheduler": "warm"}, "scheduler"), ({"epochs": 0}, "epochs"),
    ({"lr": -1.0}, "lr"), ({"label_smoothing": 1.5}, "label_smoothing"), ({"val_fraction": 0.0}, "val_fraction"),
    ({"not_a_field": 1}, "not_a_field"),
])
def test_recipe_rejects_bad_values_naming_them(overrides, message):
    with pytest.raises(ValueError, match=message):
        Recipe().with_overrides(**overrides)


def test_recipe_augment_names_are_the_ones_the_augmenter_knows():
    # zoo cannot import bench, so the names live in two places; this keeps them equal.
    from bench.data.augment import policy_named
    from zoo.recipe import AUGMENT_POLICIES

    for name in AUGMENT_POLICIES:
        policy_named(name)
    with pytest.raises(ValueError):
        policy_named("not-a-policy")
