"""MoCo v2 pretraining: backbone split, views, queue, loss, momentum rule, store, fine-tuning start."""

from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from bench.data.cache import Preprocessing
from bench.data.dataset import load_dataset
from bench.errors import CheckpointError
from bench.pretrain.backbone import UnsupportedBackboneError, find_head, load_backbone_into, split_classifier
from bench.pretrain.get_or_pretrain import get_or_pretrain
from bench.pretrain.moco_augment import MocoAugment, augment_view, two_views
from bench.pretrain.mocov2 import Moco, MocoEncoder, info_nce, queue_size_for
from bench.identity import backbone_identity
from bench.train import train_or_load as train_or_load_module
from bench.train.store import HISTORY, MANIFEST, WEIGHTS, CheckpointStore
from bench.train.train_or_load import checkpoint_key, train_or_load
from zoo.architectures.torchvision_models import build_resnet18
from zoo.entry import MRI_NORMALIZATION, ZooEntry
from zoo.pretraining import MocoRecipe
from zoo.recipe import Recipe

CPU = torch.device("cpu")


def tiny_entry(**moco_overrides) -> ZooEntry:
    return ZooEntry(
        arch="resnet18", variant="mocov2", builder=build_resnet18, input_size=32, in_channels=1,
        mean=MRI_NORMALIZATION[0], std=MRI_NORMALIZATION[1],
        recipe=Recipe(optimizer="sgd", lr=0.01, epochs=1, batch_size=16),
        source="test", pretraining=MocoRecipe(epochs=1, batch_size=16, input_size=32, **moco_overrides),
    )


@pytest.fixture
def data(make_dataset, tmp_path):
    """48 training images (40 after the validation split: two MoCo batches of 16) and 12 test images."""
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    root = make_dataset({f"Training/{c}": 12 for c in classes} | {f"Testing/{c}": 3 for c in classes})
    return load_dataset(root, Preprocessing(32, 1), tmp_path / "cache")


# --- backbone / head split --------------------------------------------------------------------

@pytest.mark.parametrize("dropout", [None, 0.3])
def test_split_torchvision_resnet(dropout):
    model = build_resnet18(num_classes=4, in_channels=1, input_size=32, dropout=dropout)
    backbone, dim, head = split_classifier(model)
    assert (dim, head) == (512, "fc")
    assert backbone(torch.zeros(2, 1, 32, 32)).shape == (2, 512)
    assert not any(k.startswith("fc.") for k in backbone.state_dict())


def test_split_timm_model():
    model = timm.create_model("resnet10t", num_classes=4, in_chans=1)
    backbone, dim, head = split_classifier(model)
    assert head == "fc" and backbone(torch.zeros(2, 1, 32, 32)).shape == (2, dim)


def test_split_unsupported_architecture_is_a_clear_error():
    with pytest.raises(UnsupportedBackboneError, match="cannot split"):
        split_classifier(zoo.get("cnn0.scratch").build(input_size=32))


def test_backbone_loads_into_classifier_and_rejects_foreign_keys():
    backbone, _, _ = split_classifier(build_resnet18(num_classes=4, in_channels=1, input_size=32))
    state = backbone.state_dict()
    classifier = build_resnet18(num_classes=4, in_channels=1, input_size=32, dropout=0.2)
    assert load_backbone_into(classifier, state) == "fc"
    assert torch.equal(classifier.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    with pytest.raises(CheckpointError, match="missing non-head"):
        load_backbone_into(classifier, {k: v for k, v in state.items() if k != "conv1.weight"})
    with pytest.raises(CheckpointError, match="does not fit"):
        load_backbone_into(build_resnet18(num_classes=4, in_channels=3, input_size=32), state)


# --- augmentation -----------------------------------------------------------------------------

def test_two_views_differ_have_the_view_size_and_are_reproducible():
    images = torch.rand(6, 1, 40, 40, generator=torch.Generator().manual_seed(1))
    a1, a2 = two_views(images, 32, MocoAugment(), torch.Generator().manual_seed(0))
    b1, b2 = two_views(images, 32, MocoAugment(), torch.Generator().manual_seed(0))
    assert a1.shape == a2.shape == (6, 1, 32, 32)
    assert not torch.allclose(a1, a2)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert a1.min() >= 0 and a1.max() <= 1


def test_view_without_randomness_is_the_image_and_flip_mirrors_it():
    images = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    still = MocoAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, blur_p=0.0)
    assert torch.allclose(augment_view(images, 16, still), images, atol=1e-6)
    flipped = augment_view(images, 16, MocoAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=1.0,
                                                   jitter_p=0.0, blur_p=0.0))
    assert torch.allclose(flipped, images.flip(-1), atol=1e-6)


def test_blur_smooths_and_keeps_brightness():
    images = torch.rand(4, 1, 224, 224, generator=torch.Generator().manual_seed(3))
    blur = MocoAugment(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, blur_p=1.0,
                       blur_sigma=(2.0, 2.0))
    out = augment_view(images, 224, blur)
    assert out.std() < 0.5 * images.std()
    assert out.mean().item() == pytest.approx(images.mean().item(), abs=1e-3)


# --- queue, loss, momentum --------------------------------------------------------------------

def test_queue_is_sized_to_the_dataset():
    assert queue_size_for(4850, 64) == 4800  # largest multiple of the batch not above N
    assert queue_size_for(50, 16) == 48
    assert queue_size_for(10, 16) == 10  # the batch itself is capped at N
    assert queue_size_for(50, 16, requested=40) == 40
    with pytest.raises(ValueError, match="at least one batch"):
        queue_size_for(50, 16, requested=8)


def tiny_moco(queue_size: int, momentum: float = 0.9) -> Moco:
    torch.manual_seed(0)
    encoder = MocoEncoder(nn.Sequential(nn.Flatten(), nn.Linear(12, 8)), feature_dim=8, projection_dim=4)
    return Moco(encoder, queue_size, projection_dim=4, encoder_momentum=momentum, temperature=0.2)


@pytest.mark.parametrize("queue_size", [48, 40])
def test_queue_is_a_ring_buffer_that_wraps_around(queue_size):
    moco = tiny_moco(queue_size)
    batches = [torch.full((16, 4), float(b)) for b in range(4)]
    for b, keys in enumerate(batches):
        moco.enqueue(keys, torch.arange(16) + 16 * b)
    written = torch.arange(64) % queue_size  # slot of the i-th key ever enqueued
    expected = torch.empty(queue_size, dtype=torch.long)
    expected[written] = torch.arange(64)  # later keys overwrite earlier ones
    assert torch.equal(moco.queue_ids, expected)
    assert torch.equal(moco.queue[:, 0], (expected // 16).float())
    assert moco.queue_ptr.item() == 64 % queue_size


def test_info_nce_hand_case():
    t = 0.2
    e = torch.eye(3)
    q, k, queue = e[:1], e[:1], e[1:]  # q equals its positive and is orthogonal to both negatives
    loss = info_nce(q, k, queue, t)
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(-1 / t)), rel=1e-5)
    assert loss.item() < 0.02
    assert torch.allclose(loss, F.cross_entropy(torch.tensor([[1 / t, 0.0, 0.0]]), torch.tensor([0])))
    wrong = info_nce(e[1:2], k, queue, t)  # q equals a negative and is orthogonal to its positive
    assert torch.allclose(wrong, F.cross_entropy(torch.tensor([[0.0, 1 / t, 0.0]]), torch.tensor([0])))
    excluded = info_nce(e[1:2], k, queue, t, exclude=torch.tensor([[True, False]]))
    assert torch.allclose(excluded, F.cross_entropy(torch.tensor([[0.0, 0.0]]), torch.tensor([0])))


def test_key_encoder_moves_by_the_momentum_rule():
    moco = tiny_moco(queue_size=16, momentum=0.9)
    optimizer = torch.optim.SGD(moco.query.parameters(), lr=0.5)
    x, ids = torch.randn(8, 12), torch.arange(8)
    for _ in range(2):  # the first step: key == query, so the rule is only visible from the second
        key_before = moco.key.backbone[1].weight.clone()
        query_before = moco.query.backbone[1].weight.detach().clone()
        loss, logits = moco(x, x + 0.1 * torch.randn_like(x), ids)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.allclose(moco.key.backbone[1].weight, 0.9 * key_before + 0.1 * query_before, atol=1e-7)
    assert not torch.equal(moco.key.backbone[1].weight, moco.query.backbone[1].weight)
    assert all(p.grad is None for p in moco.key.parameters())
    assert logits.shape == (8, 1 + 16)


def test_own_image_key_in_the_queue_is_not_a_negative():
    moco = tiny_moco(queue_size=16)
    x = torch.randn(8, 12)
    moco(x, x, torch.arange(8))  # enqueues keys of images 0..7 into slots 0..7
    _, logits = moco(x, x, torch.arange(8))
    own = torch.zeros(8, 16, dtype=torch.bool)
    own[torch.arange(8), torch.arange(8)] = True  # image i's earlier key sits in slot i
    assert torch.isinf(logits[:, 1:][own]).all() and torch.isfinite(logits[:, 1:][~own]).all()


# --- pretraining, store, fine-tuning ----------------------------------------------------------

@pytest.mark.slow
def test_pretraining_stores_a_backbone_and_a_second_call_loads_it(data, tmp_path):
    entry, store = tiny_entry(), CheckpointStore(tmp_path / "store")
    first = get_or_pretrain(entry, entry.recipe, data, store, CPU, progress=False)
    assert not first.loaded and first.key == backbone_identity(entry, entry.recipe, data).checkpoint_key()
    assert first.key.entry == "resnet18.mocov2-backbone"
    m = first.manifest
    assert m["identity"]["recipe_hash"] == entry.pretraining.hash()
    assert m["n_pretrain_images"] == 40 and m["n_val_images_held_out"] == 8  # validation images stay unseen
    assert m["queue_size"] == 32 and m["epochs_run"] == 1 and math.isfinite(m["final_loss"])
    assert (first.folder / HISTORY).read_text().startswith("epoch,loss,instance_acc")
    assert not any(k.startswith("fc.") for k in first.state)
    mtime = (first.folder / WEIGHTS).stat().st_mtime_ns

    second = get_or_pretrain(entry, entry.recipe, data, store, CPU, progress=False)
    assert second.loaded and second.manifest == m
    assert (first.folder / WEIGHTS).stat().st_mtime_ns == mtime
    assert all(torch.equal(first.state[k], second.state[k]) for k in first.state)


def test_moco_recipe_is_part_of_the_fine_tuned_key(data):
    entry, other = tiny_entry(), tiny_entry(seed=1)
    key, other_key = checkpoint_key(entry, entry.recipe, data), checkpoint_key(other, entry.recipe, data)
    assert key != other_key and key.entry == other_key.entry and key.fingerprint == other_key.fingerprint


@pytest.mark.slow
def test_fine_tuning_starts_from_the_pretrained_backbone(data, tmp_path, monkeypatch):
    entry, store = tiny_entry(), CheckpointStore(tmp_path / "store")
    seen = {}
    real_train_model = train_or_load_module.train_model

    def spy(model, *args, **kwargs):
        seen["conv1"] = model.conv1.weight.detach().clone()
        seen["bn"] = model.layer3[0].bn1.running_var.detach().clone()
        return real_train_model(model, *args, **kwargs)

    monkeypatch.setattr(train_or_load_module, "train_model", spy)
    trained = train_or_load(entry, entry.recipe, data, store, CPU, progress=False)
    backbone = get_or_pretrain(entry, entry.recipe, data, store, CPU, progress=False)
    assert backbone.loaded  # pretrained once, inside train_or_load
    assert torch.equal(seen["conv1"], backbone.state["conv1.weight"])
    assert torch.equal(seen["bn"], backbone.state["layer3.0.bn1.running_var"])
    record = trained.manifest["pretraining"]
    assert record["backbone_entry"] == "resnet18.mocov2-backbone"
    assert record["backbone_folder"] == str(backbone.folder) and (backbone.folder / MANIFEST).is_file()
    assert train_or_load(entry, entry.recipe, data, store, CPU, progress=False).loaded


def test_find_head_leaves_the_model_alone():
    model = build_resnet18(num_classes=4, in_channels=1, input_size=32)
    assert find_head(model) == ("fc", 512) and isinstance(model.fc, nn.Linear)
