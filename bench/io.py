"""Atomic file writes: the one writer every layer uses, so no reader ever sees half a file.

A file is written to a temporary name in its own folder, then renamed into place (a rename is
atomic on one file system). A crash, kill -9 or full disk mid-write leaves the old file, or none,
and never a torn one; the temporary file is removed on every exit path that can run code.

`tempfile.mkstemp` creates files readable by their owner only (0600); written files get the
mode an ordinary `open()` would give them (0666 less the umask), so checkpoints, rows and
leaderboards all share one permission policy and are readable by the group where the umask allows.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside `path` to write to (for writers that want a file name, such as
    matplotlib or safetensors); renamed to `path` when the block ends without an exception."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomically(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def write_text_atomically(path: Path | str, text: str) -> None:
    write_atomically(path, text.encode("utf-8"))


STALE_AFTER_S = 30 * 60  # a live writer finishes a file in seconds; half an hour old is a dead one's


def remove_stale_temporaries(folder: Path | str, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary files atomic_path leaves when its process is killed (kill -9 runs no
    clean-up) from `folder`, if older than `older_than_s`; the paths removed."""
    removed = []
    now = time.time()
    for path in Path(folder).glob(".*.tmp"):
        try:
            if path.is_file() and now - path.stat().st_mtime > older_than_s:
                path.unlink()
                removed.append(path)
        except OSError:  # gone meanwhile, or not ours to remove: leave it
            continue
    return removed
