"""Fixtures shared by tests/ and bench/: device, tiny generated datasets, isolated stores."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.paths import EMBEDDED_DATASET

SHARED_DATASET = Path(__file__).resolve().parent.parent / "shared" / "datasets" / "brain-tumor-mri"


@pytest.fixture(autouse=True)
def isolated_brainbench_dirs(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real cache, store or dataset setting."""
    root = tmp_path_factory.mktemp("brainbench-home")
    monkeypatch.setenv("BRAINBENCH_STORE", str(root / "store"))
    monkeypatch.setenv("BRAINBENCH_CACHE", str(root / "cache"))
    monkeypatch.delenv("BRAINBENCH_DATA", raising=False)
    return root


@pytest.fixture
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def embedded_dataset() -> Path:
    return EMBEDDED_DATASET


@pytest.fixture
def shared_dataset() -> Path:
    """The full dataset beside the checkout; tests that need it skip cleanly where it is absent."""
    if not SHARED_DATASET.is_dir():
        pytest.skip(f"full dataset not found at {SHARED_DATASET}")
    return SHARED_DATASET


def synthetic_scan(rng: np.random.Generator, size: int, label: int) -> np.ndarray:
    """A grayscale 'head' on black whose brightness pattern depends on the label (learnable)."""
    yy, xx = np.mgrid[:size, :size]
    centre = size / 2
    head = ((yy - centre) ** 2 / (0.4 * size) ** 2 + (xx - centre) ** 2 / (0.35 * size) ** 2) <= 1
    image = np.where(head, 90 + 40 * label, 0) + rng.integers(0, 20, (size, size))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def make_dataset(tmp_path) -> Callable[..., Path]:
    """Write a small dataset: make_dataset({"Training/glioma": 3, ...}) or a flat one ({"glioma": 4})."""

    def make(folders: dict[str, int], *, size: int = 32, suffix: str = ".png", name: str = "data",
             seed: int = 0) -> Path:
        root = tmp_path / name
        rng = np.random.default_rng(seed)
        for folder, count in folders.items():
            target = root / folder
            target.mkdir(parents=True, exist_ok=True)
            label = sum(map(ord, Path(folder).name)) % 4
            for i in range(count):
                Image.fromarray(synthetic_scan(rng, size, label)).save(target / f"img_{i:03d}{suffix}")
        return root

    return make


@pytest.fixture
def kaggle_dataset(make_dataset) -> Path:
    """Kaggle layout, four classes, 6 training and 3 test images each."""
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    folders = {f"Training/{c}": 6 for c in classes} | {f"Testing/{c}": 3 for c in classes}
    return make_dataset(folders)


def textured_scan(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """An asymmetric, textured 'slice': a blob off centre plus smooth noise, so flips differ from it."""
    yy, xx = np.mgrid[:size, :size] / size
    head = ((yy - 0.5) ** 2 / 0.16 + (xx - 0.5) ** 2 / 0.12) <= 1
    blob = np.exp(-((yy - rng.uniform(0.25, 0.45)) ** 2 + (xx - rng.uniform(0.2, 0.4)) ** 2) / 0.01)
    texture = np.kron(rng.uniform(0, 1, (12, 12)), np.ones((size // 12, size // 12)))
    image = head * (60 + 80 * texture + 110 * blob)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def audit_dataset(tmp_path):
    """Training: 4 distinct images per class. Testing: one copy of each kind, plus distinct images."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    classes = ("glioma", "meningioma", "notumor", "pituitary")
    for split in ("Training", "Testing"):
        for c in classes:
            (root / split / c).mkdir(parents=True)
    train = {}
    for c in classes:
        for i in range(4):
            train[c, i] = textured_scan(rng)
            Image.fromarray(train[c, i]).save(root / "Training" / c / f"tr_{i}.png")
    test = root / "Testing"
    shutil.copy(root / "Training/glioma/tr_0.png", test / "glioma/exact.png")
    Image.fromarray(train["glioma", 1][:, ::-1]).save(test / "glioma/hflip.png")
    Image.fromarray(train["meningioma", 0][::-1, :]).save(test / "meningioma/vflip.png")
    Image.fromarray(train["meningioma", 1]).resize((150, 150), Image.Resampling.BICUBIC).save(
        test / "meningioma/resized.jpg", quality=70)
    contrast = np.clip(train["notumor", 0].astype(np.float32) * 0.6 + 30, 0, 255).astype(np.uint8)
    Image.fromarray(contrast).save(test / "notumor/contrast.png")
    # A copy filed under the wrong class: a label conflict.
    Image.fromarray(train["notumor", 1]).save(test / "pituitary/mislabelled.png")
    for c in classes:
        Image.fromarray(textured_scan(rng)).save(test / c / "different.png")
    # A within-split duplicate in training (re-encoded JPEG).
    Image.fromarray(train["pituitary", 0]).save(root / "Training/pituitary/tr_0_copy.jpg", quality=90)
    return root


# The audit fixture declared with its own label set: another order, and "healthy" for the notumor
# folders, so that a layer reading a global class list instead of the dataset's shows it.
RENAMED_AUDIT_DECLARATION = '''
name = "renamed"
[labels]
classes = ["pituitary", "meningioma", "healthy", "glioma"]
no_tumor = "healthy"
aliases = { notumor = "healthy" }
[images]
from = "folders"
[[protocol]]
name = "official"
kind = "official"
'''


@pytest.fixture
def relabel_audit_dataset(audit_dataset) -> Callable[[], Path]:
    """Writes RENAMED_AUDIT_DECLARATION into the audit dataset when called (a test may use the
    dataset under its default labels first)."""
    def relabel() -> Path:
        (audit_dataset / "brainbench-dataset.toml").write_text(RENAMED_AUDIT_DECLARATION)
        return audit_dataset
    return relabel
