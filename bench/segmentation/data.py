"""Slices and their tumour masks, decoded once at one size and cached, checked on the way in.

A mask is a file of the image's own size holding only background and tumour: 0 and 255 (an
8-bit or 1-bit PNG) or 0 and 1. Anything else (another size, grey levels from a JPEG-compressed
or resized mask, a missing file) would train the model on a wrong outline, so it is refused with
one line naming the file, before any training starts.

Both are padded to a centred square (as classification images are) and resized: the image
antialiased bilinear, the mask bilinear on 0/255 and then thresholded at half, which keeps the
tumour's area where nearest-neighbour resizing would jitter its border by a pixel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.data.decode import decode_image
from bench.data.discover import DatasetIndex, Sample
from bench.data.entries import regular_file_problem
from bench.errors import DatasetError, ImageDecodeError
from bench.io import atomic_path

CACHE_FOLDER = "segmentation"
MASK_VALUES = ({0, 255}, {0, 1})  # what a mask may hold, as one of these sets (or a subset of one)


class MaskError(DatasetError):
    """A mask cannot be used as given: missing, another size than its image, or not binary."""


@dataclass(frozen=True)
class MaskedSlices:
    """Every slice of a dataset with its mask, at one size, in the index's sample order."""

    images: np.ndarray  # (N, S, S) uint8
    masks: np.ndarray  # (N, S, S) bool: tumour
    labels: np.ndarray  # (N,) class index into the dataset's label set
    rels: list[str]  # each slice's path relative to the dataset root

    def __len__(self) -> int:
        return len(self.rels)


def read_mask(sample: Sample) -> np.ndarray:
    """The sample's mask as a boolean (H, W) array, checked against its image's size and for binary values."""
    if sample.mask is None:
        raise MaskError(f"{sample.path}: no mask (the declaration's mask column is empty for this image)")
    path = Path(sample.mask)
    problem = regular_file_problem(path)
    if problem is not None:
        raise MaskError(f"mask {path} of image {sample.path}: {problem}")
    try:
        with Image.open(path) as mask_file, Image.open(sample.path) as image_file:
            mask_size, image_size = mask_file.size, image_file.size
            mask = np.asarray(mask_file.convert("L") if mask_file.mode in ("1", "P") else mask_file)
    except OSError as error:
        raise MaskError(f"mask {path}: cannot be read ({error})") from None
    if mask_size != image_size:
        raise MaskError(f"mask {path} is {mask_size[0]}x{mask_size[1]} pixels, its image {sample.path} "
                        f"{image_size[0]}x{image_size[1]}: a mask must have its image's size")
    if mask.ndim != 2:
        raise MaskError(f"mask {path} has {mask.shape[2]} channels; a mask is one grey channel of 0 and 255 "
                        "(or 0 and 1)")
    values = set(np.unique(mask).tolist())
    if not any(values <= allowed for allowed in MASK_VALUES):
        shown = ", ".join(str(v) for v in sorted(values)[:6]) + (", ..." if len(values) > 6 else "")
        raise MaskError(f"mask {path} holds the values {shown}; a mask holds only 0 and 255 (or 0 and 1): "
                        "grey levels come from a resized or JPEG-saved mask")
    return mask > 0


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    h, w = mask.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = np.zeros((side, side), np.uint8)
    square[top:top + h, left:left + w] = mask.astype(np.uint8) * 255
    if side != size:
        square = np.asarray(Image.fromarray(square).resize((size, size), Image.Resampling.BILINEAR))
    return square >= 128


def _decode_pair(sample: Sample, size: int) -> tuple[np.ndarray, np.ndarray]:
    mask = read_mask(sample)
    try:
        image = decode_image(sample.path, size, 1)[0]
    except ImageDecodeError as error:
        raise DatasetError(f"{error} (a segmentation set cannot skip a slice: its mask would lose its image)") from None
    return image, _resize_mask(mask, size)


def _cache_file(cache_root: Path, fingerprint: str, size: int) -> Path:
    return Path(cache_root) / CACHE_FOLDER / f"{fingerprint}-{size}px.npz"


def load_masked_slices(index: DatasetIndex, fingerprint: str, size: int, cache_root: Path) -> MaskedSlices:
    """Every slice and mask of `index` at `size` px, from the cache or decoded (and cached)."""
    samples = index.samples
    if index.declaration.mask_column is None:
        raise DatasetError(f"dataset {index.root} ({index.declaration.name}) declares no mask column: a "
                           "segmentation suite needs a tumour mask per image")
    path = _cache_file(cache_root, fingerprint, size)
    rels = [s.rel for s in samples]
    if path.is_file():
        with np.load(path) as cached:
            if list(cached["rels"]) == rels:
                return MaskedSlices(cached["images"], cached["masks"], cached["labels"], rels)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        pairs = list(tqdm(pool.map(lambda s: _decode_pair(s, size), samples), total=len(samples),
                          desc=f"decoding slices and masks at {size} px", unit="img"))
    slices = MaskedSlices(np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]),
                          np.asarray([s.label for s in samples], np.int64), rels)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as tmp_file:
        np.savez(tmp_file, images=slices.images, masks=slices.masks, labels=slices.labels, rels=np.asarray(rels))
    return slices
