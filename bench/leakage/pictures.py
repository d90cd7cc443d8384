"""The audit's small grey pictures and file hashes of a dataset, decoded once per fingerprint.

Decoding 7,019 JPEGs is the one slow step of a leakage analysis (about 20 s here); the result
(28 MB of 64 px pictures) is kept in the decoded-image cache, so every later run of any suite
on the same data starts from it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from bench.audit.load import DECODE_SIDE, AuditSplit, load_split
from bench.data.discover import DatasetIndex
from bench.io import write_atomically


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
    write_atomically(path, buffer.getvalue())


def _load(path: Path) -> tuple[AuditSplit, AuditSplit] | None:
    try:
        with np.load(path) as data:
            splits = []
            for name in ("train", "test"):
                meta = json.loads(data[f"{name}_meta"].tobytes())
                splits.append(AuditSplit(name, meta["rels"], data[f"{name}_labels"], meta["sha256"],
                                         data[f"{name}_pixels"]))
            return splits[0], splits[1]
    except (OSError, KeyError, ValueError):
        return None  # missing or damaged: decode again


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
