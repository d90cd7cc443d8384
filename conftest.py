"""Fixtures shared by tests/ and bench/: device, tiny generated datasets, isolated stores."""

from __future__ import annotations

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
