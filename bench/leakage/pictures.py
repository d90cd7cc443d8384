"""The audit's small grey pictures and file hashes of a dataset, decoded once per fingerprint.

Decoding 7,019 JPEGs is the one slow step of a leakage analysis (about 20 s here); the result
(28 MB of 64 px pictures) is kept in the decoded-image cache, so every later run of any suite
on the same data starts from it.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from bench.audit.load import DECODE_SIDE, AuditSplit, load_split
from bench.data.discover import DatasetIndex
from bench.errors import CacheError
from bench.io import write_atomically

log = logging.getLogger("brainbench")
# What reading a damaged .npz can raise: truncated (BadZipFile, EOFError), bad JSON (ValueError),
# a missing array (KeyError), wrong types (TypeError, AttributeError), an unreadable file (OSError).
_DAMAGED = (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile)


def _cache_file(cache_root: Path, fingerprint: str) -> Path:
    return Path(cache_root) / f"audit-pictures-{fingerprint}-{DECODE_SIDE}px.npz"


def _save(path: Path, splits: tuple[AuditSplit, AuditSplit]) -> None:
    arrays = {}
    for split in splits:
        arrays[f"{split.name}_pixels"] = split.pixels
        arrays[f"{split.name}_labels"] = split.labels
        arrays[f"{split.name}_meta"] = np.frombuffer(
            json.dumps({"rels": split.rels, "sha256": split.sha256}).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        write_atomically(path, buffer.getvalue())
    except OSError as error:
        raise CacheError(f"cannot write the audit picture cache {path}: {error.strerror or error} "
                         "(free some space, or choose another folder with --cache)") from error


def _load(path: Path) -> tuple[AuditSplit, AuditSplit] | None:
    """The cached pictures, or None (with a warning) when the file is damaged: decode again."""
    try:
        with np.load(path, allow_pickle=False) as data:
            splits = []
            for name in ("train", "test"):
                meta = json.loads(data[f"{name}_meta"].tobytes())
                split = AuditSplit(name, meta["rels"], data[f"{name}_labels"], meta["sha256"], data[f"{name}_pixels"])
                _check(split)
                splits.append(split)
            return splits[0], splits[1]
    except _DAMAGED as error:
        log.warning("audit picture cache %s is damaged (%s: %s); decoding again", path, type(error).__name__, error)
        return None


def _check(split: AuditSplit) -> None:
    """One grey DECODE_SIDE picture, label, path and hash per image, as _save wrote them."""
    n = len(split.pixels)
    if split.pixels.dtype != np.uint8 or split.pixels.shape != (n, DECODE_SIDE, DECODE_SIDE):
        raise ValueError(f"{split.name} pictures are {split.pixels.dtype} {split.pixels.shape}")
    if split.labels.dtype != np.int64 or split.labels.shape != (n,):
        raise ValueError(f"{split.name} labels are {split.labels.dtype} {split.labels.shape} for {n} pictures")
    for column in (split.rels, split.sha256):
        if not isinstance(column, list) or len(column) != n or not all(isinstance(v, str) for v in column):
            raise ValueError(f"{split.name} paths or hashes do not match its {n} pictures")


def audit_pictures(index: DatasetIndex, fingerprint: str, cache_root: Path) -> tuple[AuditSplit, AuditSplit]:
    """(train, test) pictures and hashes, from the cache when this fingerprint was decoded before.

    Unreadable files are left out here exactly as the decoded cache leaves them out (with a
    warning naming the file when first decoded).
    """
    path = _cache_file(cache_root, fingerprint)
    cached = _load(path) if path.is_file() else None
    if cached is not None:
        return cached
    skipped: list[dict] = []
    splits = (load_split("train", index.train, skipped), load_split("test", index.test, skipped))
    _save(path, splits)
    return splits
