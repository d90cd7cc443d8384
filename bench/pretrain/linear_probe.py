"""Linear probe: how linearly separable the classes are in a frozen backbone's features.

Features of Training fit a logistic regression on standardised features; Testing scores it. The
probe chooses nothing on validation (its regularisation is fixed), so it fits on all of Training.
The same probe on a randomly initialised backbone of the same architecture is the floor that
pretraining has to beat.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from bench.data.batches import Normalizer
from bench.data.dataset import LoadedDataset
from bench.evaluate.predict import predict_logits
from bench.pretrain.backbone import load_backbone_into, split_classifier
from bench.pretrain.get_or_pretrain import get_or_pretrain
from bench.train.loop import autocast_dtype_for
from bench.train.store import CheckpointStore
from zoo.entry import ZooEntry
from zoo.recipe import Recipe

RANDOM_INIT_SEED = 0


def backbone_features(backbone: nn.Module, images: torch.Tensor, mean, std, device: torch.device) -> np.ndarray:
    """(N, D) float32 features of uint8 (N, C, H, W) images, in eval mode, without augmentation."""
    backbone.to(device)
    # predict_logits returns whatever the model outputs, in order: here pooled features.
    features = predict_logits(backbone, images, Normalizer(mean, std, device), channels_last=device.type == "cuda",
                              autocast_dtype=autocast_dtype_for(device))
    if features.ndim != 2:
        raise ValueError(f"backbone returned features of shape {tuple(features.shape)}, expected (N, D)")
    return features.numpy()


def probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                   *, max_iter: int = 5000) -> float:
    """Test accuracy of a logistic regression fit on standardised training features."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    probe.fit(train_x, train_y)
    return float(probe.score(test_x, test_y))


def linear_probe_accuracy(backbone: nn.Module, mean, std, data: LoadedDataset, device: torch.device) -> float:
    train, test = data.decoded.train, data.decoded.test
    train_x = backbone_features(backbone, train.images, mean, std, device)
    test_x = backbone_features(backbone, test.images, mean, std, device)
    return probe_accuracy(train_x, train.labels.numpy(), test_x, test.labels.numpy())


def random_backbone(entry: ZooEntry, input_size: int, seed: int = RANDOM_INIT_SEED) -> nn.Module:
    """The architecture freshly initialised from a fixed seed; the caller's RNG state is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed would reseed CUDA too
        model = entry.build(input_size=input_size, dropout=0.0)
    return split_classifier(model)[0]


def mocov2_backbone(entry: ZooEntry, recipe: Recipe, data: LoadedDataset, store: CheckpointStore,
                    device: torch.device) -> nn.Module:
    """The stored MoCo v2 backbone (pretrained first if the store has none)."""
    pretrained = get_or_pretrain(entry, recipe, data, store, device)
    model = entry.build(input_size=data.decoded.preprocessing.size, dropout=0.0)
    load_backbone_into(model, pretrained.state)
    return split_classifier(model)[0]


def linear_probe_row(entry: ZooEntry, data: LoadedDataset, store: CheckpointStore, device: torch.device, *,
                     recipe: Recipe | None = None, imagenet_entry: ZooEntry | None = None,
                     imagenet_data: LoadedDataset | None = None) -> dict:
    """`probe_acc_mocov2` and `probe_acc_random` for a mocov2 entry, plus `probe_acc_imagenet` when an
    ImageNet entry of the same architecture is given (with its own decoded view of the same dataset
    when its channels or input size differ from `data`'s)."""
    recipe = recipe or entry.recipe
    size = data.decoded.preprocessing.size
    row = {
        "probe_acc_mocov2": linear_probe_accuracy(mocov2_backbone(entry, recipe, data, store, device),
                                                  entry.mean, entry.std, data, device),
        "probe_acc_random": linear_probe_accuracy(random_backbone(entry, size), entry.mean, entry.std, data, device),
    }
    if imagenet_entry is not None:
        imagenet_data = imagenet_data or data
        if imagenet_data.fingerprint != data.fingerprint:
            raise ValueError("the ImageNet probe must use the same dataset as the MoCo probe")
        if imagenet_data.decoded.preprocessing.channels != imagenet_entry.in_channels:
            raise ValueError(f"{imagenet_entry.name} reads {imagenet_entry.in_channels} channel(s); pass "
                             f"imagenet_data decoded with that many")
        backbone = split_classifier(imagenet_entry.build(input_size=imagenet_data.decoded.preprocessing.size,
                                                         dropout=0.0))[0]
        row["probe_acc_imagenet"] = linear_probe_accuracy(backbone, imagenet_entry.mean, imagenet_entry.std,
                                                          imagenet_data, device)
    return row
