"""A dataset fingerprint: identifies the exact files a result came from, not the folder's name.

It hashes, for every image of both splits, the split, the relative path and the file's bytes,
in sorted order, so it is the same on every machine and for any directory listing order.
Public copies of the brain tumor MRI dataset differ by a few files; their fingerprints differ too.

Read with the default declaration's label rule, that is all (the fingerprints of the Kaggle
dataset and of the embedded mini dataset stay what they always were). Under any other
declaration the same files can mean other classes (44c by type or by type and sequence), so the
label set and each image's class, group and fold are hashed too: a relabelled dataset gets another
fingerprint, and so another decoded cache (which stores labels as indices into the label set).
An image of a dataset without an official split is in split "all".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.data.declaration import DEFAULT_DECLARATION, shipped_declaration
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


def _uses_default_label_rule(index: DatasetIndex) -> bool:
    return index.declaration.key() == shipped_declaration(DEFAULT_DECLARATION).key()


def _labelled(line: str, sample: Sample, index: DatasetIndex) -> str:
    line += f"\t{index.labels.names[sample.label]}"
    if sample.group is not None:
        line += f"\tgroup={sample.group}"
    if sample.fold is not None:
        line += f"\tfold={sample.fold}"
    return line


def dataset_fingerprint(index: DatasetIndex) -> str:
    train_split = "train" if index.has_official_split else "all"
    lines = [(split, sample.rel, sample) for split, samples in ((train_split, index.train), ("test", index.test))
             for sample in samples]
    legacy = _uses_default_label_rule(index)
    digest = hashlib.sha256()
    if not legacy:
        digest.update(f"labels\t{json.dumps(list(index.labels.names))}\n".encode())
    for split, rel, sample in sorted(lines, key=lambda line: line[:2]):
        line = f"{split}\t{rel}\t{_sample_sha256(sample)}"
        digest.update(f"{line if legacy else _labelled(line, sample, index)}\n".encode())
    return digest.hexdigest()[:FINGERPRINT_LENGTH]
