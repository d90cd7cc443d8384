"""Decode every image once into a uint8 tensor cache; epochs never decode a JPEG again.

The cache is keyed by dataset fingerprint, resolution, channels and preprocessing, stored
outside the dataset folder, and written atomically: an interrupted build leaves no partial cache.
Unreadable images are skipped with a warning naming the file, and listed in the cache's record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.data.decode import decode_image
from bench.data.discover import DatasetIndex, Sample
from bench.data.labels import CLASS_NAMES
from bench.errors import DatasetError, ImageDecodeError

log = logging.getLogger("brainbench")

# Bump when decoding changes what pixels come out, so that old caches are not reused.
DECODER_VERSION = 1


@dataclass(frozen=True)
class Preprocessing:
    size: int
    channels: int
    crop_to_content: bool = False

    def key(self, fingerprint: str) -> str:
        text = f"{fingerprint}|{self.size}|{self.channels}|crop={self.crop_to_content}|v{DECODER_VERSION}"
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass
class DecodedSplit:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    paths: list[str]  # relative to the dataset root, same order as images

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class DecodedDataset:
    train: DecodedSplit
    test: DecodedSplit
    skipped: list[dict]  # [{"path": rel, "reason": ...}] images that could not be decoded
    preprocessing: Preprocessing
    cache_dir: Path


def decode_all(samples: tuple[Sample, ...], prep: Preprocessing, desc: str):
    """Decode in a few threads (PIL releases the GIL while decoding); keep file order."""

    def one(sample: Sample):
        try:
            return decode_image(sample.path, prep.size, prep.channels, prep.crop_to_content), None
        except ImageDecodeError as error:
            return None, str(error)

    images, labels, paths, skipped = [], [], [], []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        results = pool.map(one, samples)
        for sample, (array, error) in tqdm(zip(samples, results), total=len(samples), desc=desc, unit="img"):
            if array is None:
                log.warning("skipping unreadable image %s: %s", sample.path, error)
                skipped.append({"path": sample.rel, "reason": error})
                continue
            images.append(array)
            labels.append(sample.label)
            paths.append(sample.rel)
    shape = (0, prep.channels, prep.size, prep.size)
    stacked = np.stack(images) if images else np.zeros(shape, np.uint8)
    return stacked, np.asarray(labels, np.int64), paths, skipped


def _write_atomically(folder: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write into a temporary sibling folder, then rename it into place in one step."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    for name, array in arrays.items():
        np.save(staging / f"{name}.npy", array, allow_pickle=False)
    (staging / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        os.replace(staging, folder)
    except OSError:  # another process finished the same cache first; theirs is identical
        for file in staging.iterdir():
            file.unlink()
        staging.rmdir()


def _load(folder: Path, prep: Preprocessing) -> DecodedDataset:
    meta = json.loads((folder / "meta.json").read_text())

    def split(name: str) -> DecodedSplit:
        images = np.load(folder / f"{name}_images.npy", allow_pickle=False)
        labels = np.load(folder / f"{name}_labels.npy", allow_pickle=False)
        return DecodedSplit(torch.from_numpy(images), torch.from_numpy(labels), meta[f"{name}_paths"])

    return DecodedDataset(split("train"), split("test"), meta["skipped"], prep, folder)


def _check_classes_survived(train_labels: np.ndarray, test_labels: np.ndarray, index: DatasetIndex) -> None:
    """Skipped images can empty a class; that must stop the run before any training."""
    for name, labels in (("training", train_labels), ("test", test_labels)):
        if len(labels) == 0:
            raise DatasetError(f"no readable image is left in the {name} split of {index.root}")
    expected = {s.label for s in index.train}
    for name, labels in (("training", train_labels), ("test", test_labels)):
        for label in sorted(expected - set(labels.tolist())):
            raise DatasetError(
                f"every image of class {CLASS_NAMES[label]!r} in the {name} split of {index.root} is unreadable"
            )


def load_or_build(index: DatasetIndex, fingerprint: str, prep: Preprocessing, cache_root: Path) -> DecodedDataset:
    """Return the decoded dataset, decoding the images only if no cache exists for this key."""
    folder = Path(cache_root) / prep.key(fingerprint)
    if (folder / "meta.json").is_file():
        try:
            return _load(folder, prep)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
            log.warning("decoded cache %s is unreadable (%s); decoding again", folder, error)
            _remove_folder(folder)
    train = decode_all(index.train, prep, "decoding training images")
    test = decode_all(index.test, prep, "decoding test images")
    _check_classes_survived(train[1], test[1], index)
    meta = {
        "fingerprint": fingerprint,
        "preprocessing": prep.__dict__,
        "decoder_version": DECODER_VERSION,
        "train_paths": train[2],
        "test_paths": test[2],
        "skipped": train[3] + test[3],
    }
    arrays = {"train_images": train[0], "train_labels": train[1], "test_images": test[0], "test_labels": test[1]}
    _write_atomically(folder, arrays, meta)
    return _load(folder, prep)


def _remove_folder(folder: Path) -> None:
    for file in folder.iterdir():
        file.unlink()
    folder.rmdir()
