"""A dataset fingerprint: identifies the exact files a result came from, not the folder's name.

It hashes, for every image of both splits, the split, the relative path and the file's bytes,
in sorted order, so it is the same on every machine and for any directory listing order.
Public copies of the brain tumor MRI dataset differ by a few files; their fingerprints differ too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.data.discover import DatasetIndex, Sample
from bench.data.entries import printable, regular_file_problem
from bench.errors import DatasetError

FINGERPRINT_LENGTH = 16  # hex characters shown and used in keys; 64 bits is plenty for a key


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _sample_sha256(sample: Sample) -> str:
    """Discovery kept regular files only; one that changed since (replaced by a FIFO, removed)
    must stop the run with its name, not block in open() or end in a traceback."""
    problem = regular_file_problem(sample.path)
    try:
        if problem is None:
            return file_sha256(sample.path)
    except OSError as error:
        problem = error.strerror or str(error)
    raise DatasetError(f"{printable(str(sample.path))} changed while the dataset was read ({problem}); run again")


def dataset_fingerprint(index: DatasetIndex) -> str:
    lines = [(split, sample.rel, sample) for split, samples in (("train", index.train), ("test", index.test))
             for sample in samples]
    digest = hashlib.sha256()
    for split, rel, sample in sorted(lines, key=lambda line: line[:2]):
        digest.update(f"{split}\t{rel}\t{_sample_sha256(sample)}\n".encode())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]
