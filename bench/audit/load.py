"""Decode every image of both splits once, small and grey, and hash its bytes.

The audit needs two things per file: its sha256 (byte-identical copies) and a small grayscale
picture (copies that were resized, re-encoded, brightened or mirrored). Both are computed in
one pass over a thread pool, as the decoded cache does: PIL and hashlib release the GIL.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from bench.data.decode import decode_image
from bench.data.discover import Sample
from bench.errors import ImageDecodeError

log = logging.getLogger("brainbench")

# Decoded side in pixels. 64 keeps enough detail to tell two different slices apart while
# decoding stays the only real cost; match.py pools it further for the comparison.
DECODE_SIDE = 64


@dataclass
class AuditSplit:
    name: str  # "train" or "test"
    rels: list[str]  # paths relative to the dataset root
    labels: np.ndarray  # (N,) int64 class indices
    sha256: list[str]
    pixels: np.ndarray  # (N, DECODE_SIDE, DECODE_SIDE) uint8, grey

    def __len__(self) -> int:
        return len(self.rels)


def _one(sample: Sample):
    try:
        # Decode first: decode_image refuses anything but a regular file, which read_bytes()
        # would open (and a FIFO would block it forever).
        pixels = decode_image(sample.path, DECODE_SIDE, 1)[0]
        data = sample.path.read_bytes()
    except (OSError, ImageDecodeError) as error:
        return None, None, str(error)
    return hashlib.sha256(data).hexdigest(), pixels, None


def load_split(name: str, samples: tuple[Sample, ...], skipped: list[dict]) -> AuditSplit:
    """Decode and hash `samples` in file order; unreadable files are logged and appended to `skipped`."""
    rels, labels, hashes, pixels = [], [], [], []
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for sample, (digest, array, error) in zip(samples, pool.map(_one, samples)):
            if error is not None:
                log.warning("audit: skipping unreadable image %s: %s", sample.path, error)
                skipped.append({"path": sample.rel, "reason": error})
                continue
            rels.append(sample.rel)
            labels.append(sample.label)
            hashes.append(digest)
            pixels.append(array)
    stacked = np.stack(pixels) if pixels else np.zeros((0, DECODE_SIDE, DECODE_SIDE), np.uint8)
    return AuditSplit(name, rels, np.asarray(labels, np.int64), hashes, stacked)
