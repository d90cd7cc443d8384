"""Decode every image once into a uint8 tensor cache; epochs never decode a JPEG again.

The cache is keyed by dataset fingerprint, resolution, channels and preprocessing, stored
outside the dataset folder, and written atomically: an interrupted build leaves no partial cache.
Unreadable images are skipped with a warning naming the file, and listed in the cache's record
(a later run that reads the cache warns about them again, in one line).

A cache that cannot be read back as it was written (truncated, bad JSON, wrong arrays) is
removed with a warning and decoded again. A failed write removes its staging folder; a staging
folder older than STALE_STAGING_SECONDS (its writer was killed) is removed by the next build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.data.decode import decode_image
from bench.data.discover import DatasetIndex, Sample
from bench.errors import CacheError, DatasetError, ImageDecodeError

log = logging.getLogger("brainbench")

# Bump when decoding changes what pixels come out, so that old caches are not reused.
DECODER_VERSION = 1
STAGING_MARK = ".tmp-"  # <key>.tmp-<random>: a cache folder being written
# Writing a staging folder takes seconds (decoding happens before it is created), so one this old
# was left by a killed process; a live writer's folder is never this old.
STALE_STAGING_SECONDS = 30 * 60
SKIPPED_NAMES_SHOWN = 3
# What reading a damaged cache can raise: truncated or empty .npy (EOFError, ValueError), a
# garbage file that looks like a zip (BadZipFile), bad JSON, missing keys, wrong types.
_DAMAGED = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


class DamagedCacheError(ValueError):
    """A cache file reads, but not as what was written (wrong shape, dtype or length)."""


@dataclass(frozen=True)
class Preprocessing:
    size: int
    channels: int
    crop_to_content: bool = False
    resize: str = "bilinear"  # zoo.entry.RESIZE_FILTERS

    def key(self, fingerprint: str) -> str:
        text = f"{fingerprint}|{self.size}|{self.channels}|crop={self.crop_to_content}|v{DECODER_VERSION}"
        if self.resize != "bilinear":  # only then: caches decoded before the filter was a choice stay valid
            text += f"|resize={self.resize}"
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
            return decode_image(sample.path, prep.size, prep.channels, prep.crop_to_content, prep.resize), None
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
    """Write into a temporary sibling folder, then rename it into place in one step; the
    staging folder is removed on every exit path (full disk, kill by Ctrl-C, lost race)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=folder.name + STAGING_MARK, dir=folder.parent))
    try:
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", array, allow_pickle=False)
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / "meta.json").is_file():
                raise
            # another process finished the same cache first; theirs is identical
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_stale_staging(cache_root: Path) -> None:
    """Remove staging folders left by killed cache builds (older than STALE_STAGING_SECONDS)."""
    now = time.time()
    for path in Path(cache_root).glob(f"*{STAGING_MARK}*"):
        try:
            age = now - path.lstat().st_mtime
        except OSError:
            continue  # removed meanwhile
        if path.is_dir() and not path.is_symlink() and age > STALE_STAGING_SECONDS:
            log.warning("removing %s, left by a cache build that was interrupted %.0f minutes ago",
                        path, age / 60)
            shutil.rmtree(path, ignore_errors=True)


def _load(folder: Path, prep: Preprocessing, n_classes: int) -> DecodedDataset:
    meta = json.loads((folder / "meta.json").read_text())

    def split(name: str) -> DecodedSplit:
        images = np.load(folder / f"{name}_images.npy", allow_pickle=False)
        labels = np.load(folder / f"{name}_labels.npy", allow_pickle=False)
        paths = meta[f"{name}_paths"]
        _check_arrays(name, images, labels, paths, prep, n_classes)
        return DecodedSplit(torch.from_numpy(images), torch.from_numpy(labels), paths)

    skipped = meta.get("skipped")
    if not isinstance(skipped, list) or not all(isinstance(s, dict) for s in skipped):
        raise DamagedCacheError("meta.json has no list of skipped images")
    return DecodedDataset(split("train"), split("test"), meta["skipped"], prep, folder)


def _check_arrays(name: str, images: np.ndarray, labels: np.ndarray, paths, prep: Preprocessing,
                  n_classes: int) -> None:
    """The arrays must be what this preprocessing writes, one image and label per path."""
    expected = (prep.channels, prep.size, prep.size)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != expected:
        raise DamagedCacheError(f"{name} images are {images.dtype} {images.shape}, not uint8 (N, {expected})")
    if labels.dtype != np.int64 or labels.shape != (len(images),):
        raise DamagedCacheError(f"{name} labels are {labels.dtype} {labels.shape} for {len(images)} images")
    if not isinstance(paths, list) or len(paths) != len(images) or not all(isinstance(p, str) for p in paths):
        raise DamagedCacheError(f"{name} paths do not match its {len(images)} images")
    if len(labels) and not 0 <= labels.min() <= labels.max() < n_classes:
        raise DamagedCacheError(f"{name} labels outside 0..{n_classes - 1}")


def _check_classes_survived(train_labels: np.ndarray, test_labels: np.ndarray, index: DatasetIndex) -> None:
    """Skipped images can empty a class; that must stop the run before any training."""
    # Without an official split everything is in "train"; protocols draw the test side later.
    sides = (("training", train_labels), ("test", test_labels)) if index.has_official_split \
        else (("dataset", train_labels),)
    for name, labels in sides:
        if len(labels) == 0:
            raise DatasetError(f"no readable image is left in the {name} split of {index.root}")
    expected = {s.label for s in index.train}
    for name, labels in sides:
        for label in sorted(expected - set(labels.tolist())):
            raise DatasetError(f"every image of class {index.labels.names[label]!r} in the {name} split of "
                               f"{index.root} is unreadable")


def load_or_build(index: DatasetIndex, fingerprint: str, prep: Preprocessing, cache_root: Path) -> DecodedDataset:
    """Return the decoded dataset, decoding the images only if no cache exists for this key."""
    folder = Path(cache_root) / prep.key(fingerprint)
    remove_stale_staging(Path(cache_root))
    cached = _load_existing(folder, prep, len(index.labels))
    if cached is not None:
        _warn_skipped_again(cached)
        return cached
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
    try:
        _write_atomically(folder, arrays, meta)
    except OSError as error:
        raise CacheError(f"cannot write the decoded-image cache in {folder.parent}: {error.strerror or error} "
                         "(free some space, or choose another folder with --cache)") from error
    return _load(folder, prep, len(index.labels))


def _load_existing(folder: Path, prep: Preprocessing, n_classes: int) -> DecodedDataset | None:
    """The cached dataset; None when there is none, or (with a warning) when it is damaged."""
    if not folder.exists():
        return None
    try:
        return _load(folder, prep, n_classes)
    except _DAMAGED as error:
        log.warning("decoded cache %s is damaged (%s: %s); removing it and decoding again",
                    folder, type(error).__name__, error)
        _remove_folder(folder)
        return None


def _warn_skipped_again(decoded: DecodedDataset) -> None:
    """A run from the cache decodes nothing, so it repeats what the first run skipped, in one line."""
    skipped = decoded.skipped
    if not skipped:
        return
    names = ", ".join(str(s.get("path")) for s in skipped[:SKIPPED_NAMES_SHOWN])
    more = f" and {len(skipped) - SKIPPED_NAMES_SHOWN} more" if len(skipped) > SKIPPED_NAMES_SHOWN else ""
    log.warning("%d unreadable image(s) were skipped when the decoded cache %s was built: %s%s "
                "(all listed in the run record)", len(skipped), decoded.cache_dir, names, more)


def _remove_folder(folder: Path) -> None:
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    else:
        folder.unlink()
