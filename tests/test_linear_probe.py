"""Linear probe: logistic regression on frozen features; the row a mocov2 entry adds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.pretrain.linear_probe import linear_probe_row, probe_accuracy, random_backbone
from bench.train.store import CheckpointStore
from zoo.architectures.torchvision_models import build_resnet18
from zoo.entry import MRI_NORMALIZATION, ZooEntry
from zoo.pretraining import MocoRecipe
from zoo.recipe import Recipe


def resnet18_entry(variant: str) -> ZooEntry:
    return ZooEntry(
        arch="resnet18", variant=variant, builder=build_resnet18, input_size=32, in_channels=1,
        mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1], recipe=Recipe(epochs=1, batch_size=16), source="test",
        pretraining=MocoRecipe(epochs=1, batch_size=16, input_size=32) if variant == "mocov2" else None,
    )


def test_probe_separates_linearly_separable_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 64)) * 3

    def split(n):
        labels = rng.integers(0, 4, n)
        return centres[labels] + rng.normal(size=(n, 64)), labels

    (train_x, train_y), (test_x, test_y) = split(200), split(100)
    assert probe_accuracy(train_x, train_y, test_x, test_y) > 0.95


def test_random_backbone_is_seeded_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = random_backbone(resnet18_entry("mocov2"), 32), random_backbone(resnet18_entry("mocov2"), 32)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.slow
def test_linear_probe_row_has_every_key(kaggle_dataset, tmp_path):
    data = load_dataset(kaggle_dataset, Preprocessing(32, 1), tmp_path / "cache")
    store = CheckpointStore(tmp_path / "store")
    # A stand-in for an ImageNet entry: same architecture, only the plumbing is under test here.
    row = linear_probe_row(resnet18_entry("mocov2"), data, store, torch.device("cpu"),
                           imagenet_entry=resnet18_entry("scratch"))
    assert set(row) == {"probe_acc_mocov2", "probe_acc_random", "probe_acc_imagenet"}
    assert all(0.0 <= value <= 1.0 for value in row.values())
    assert (tmp_path / "store" / "resnet18.mocov2-backbone").is_dir()  # the MoCo backbone was stored
