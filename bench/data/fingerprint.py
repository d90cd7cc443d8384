"""A dataset fingerprint: identifies the exact files a result came from, not the folder's name.

It hashes, for every image of both splits, the split, the relative path and the file's bytes,
in sorted order, so it is the same on every machine and for any directory listing order.
Public copies of the brain tumor MRI dataset differ by a few files; their fingerprints differ too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.data.discover import DatasetIndex

FINGERPRINT_LENGTH = 16  # hex characters shown and used in keys; 64 bits is plenty for a key


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_fingerprint(index: DatasetIndex) -> str:
    lines = [(split, sample.rel, sample.path) for split, samples in (("train", index.train), ("test", index.test))
             for sample in samples]
    digest = hashlib.sha256()
    for split, rel, path in sorted(lines):
        digest.update(f"{split}\t{rel}\t{file_sha256(path)}\n".encode())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]
