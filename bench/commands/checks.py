"""Checks every command makes before any work: where it will write, which device it will use.

They run first so that a typo in `--out` fails in a second, not after the first entry has
trained for an hour.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.errors import OptionError


def writable_folder(path: Path | str, option: str) -> Path:
    """`path` as a folder brainbench can write into, OptionError naming the option and the obstacle
    (a regular file on the way, a read-only or full file system) otherwise. Nothing is created:
    a command that stops early for another reason leaves no empty folder behind."""
    path = Path(path).expanduser()
    existing = next(a for a in (path, *path.parents) if a.exists() or a == a.parent)
    if not existing.is_dir():
        raise OptionError(f"{option} {path}: {existing} is a file, not a folder")
    try:
        # Writing a probe is the only check that cannot disagree with the file system (read-only
        # mounts, quotas, a full disk); root ignores the permission bits os.access reads.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise OptionError(f"{option} {path}: cannot write in {existing} ({error.strerror or error})") from None
    return path


def writable_file(path: Path | str, option: str) -> Path:
    """A file path whose folder is writable and which is not itself a folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OptionError(f"{option} {path}: is a folder; give a file name")
    writable_folder(path.parent if str(path.parent) else Path(os.curdir), option)
    return path
