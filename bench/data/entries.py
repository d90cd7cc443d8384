"""Walk a dataset folder by lstat, so that no odd entry can hang, loop or relabel a run.

A dataset folder is user input. The rules, shared by the dataset and the external-set finders:

- Only regular files are read. A symbolic link to a regular file is read (datasets assembled from
  links are common); a file reached twice (two links, or a link and its target: equal realpath)
  counts once, at the real file's path if it is in the dataset, else at its first path.
- Folders are walked whatever their name (a folder named ``x.jpg`` is a folder). A symbolic link
  to a folder is never followed: ``up -> ..`` inside a class folder would loop, or file every
  other class's images under this class.
- Everything else is skipped with a warning naming it, and counted: FIFOs, sockets and devices
  (opening a FIFO blocks forever), dangling and self-looping links, and names that are not valid
  UTF-8 (they cannot be written to the UTF-8 reports, CSV files and fingerprint).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("brainbench")
Item = TypeVar("Item")

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
FOLDER_LINK = "a symbolic link to a folder, not followed (a folder link can loop or relabel images)"
NOT_UTF8 = "its name is not valid UTF-8; rename it"


@dataclass(frozen=True)
class SkippedEntry:
    path: str  # relative to the walked root, printable (see `printable`)
    reason: str

    def record(self) -> dict:
        return {"path": self.path, "reason": self.reason}


def is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name == "__MACOSX"


def printable(text: str) -> str:
    """A path as text that prints and survives JSON/CSV: bytes that are not UTF-8 shown as \\xNN."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def is_valid_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # undecodable bytes arrive as lone surrogates, which fail here
    except UnicodeEncodeError:
        return False
    return True


def regular_file_problem(path: Path | str) -> str | None:
    """None when `path` is, or links to, a regular file (safe to open); else why it is not."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "a dangling symbolic link" if os.path.islink(path) else "no such file"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"cannot be read ({error.strerror})"
    if stat.S_ISREG(info.st_mode):
        return None
    kind = next((name for test, name in _KINDS if test(info.st_mode)), "of an unknown kind")
    return f"not a regular file ({kind})"


class FolderWalk:
    """Lists files below one root by the rules above, remembering every entry it skipped."""

    def __init__(self, root: Path):
        # Resolved by the caller: below it, a regular file's path is then its realpath.
        if not root.is_absolute() or root != root.resolve():
            raise ValueError(f"FolderWalk needs a resolved root, got {root}")
        self.root = root
        self.skipped: list[SkippedEntry] = []
        self._link_target: dict[Path, str] = {}  # file links found -> realpath of their target

    def rel(self, path: Path) -> str:
        return printable(path.relative_to(self.root).as_posix())

    def skip(self, path: Path, reason: str) -> None:
        entry = SkippedEntry(self.rel(path), reason)
        log.warning("skipping %s in %s: %s", entry.path, printable(str(self.root)), reason)
        self.skipped.append(entry)

    def children(self, folder: Path) -> tuple[list[Path], list[Path]]:
        """(folders, files) directly in `folder`, sorted, hidden ones left out, the rest skipped."""
        entries = self._entries(folder)
        return [p for p, is_folder in entries if is_folder], [p for p, is_folder in entries if not is_folder]

    def files_below(self, folder: Path) -> list[Path]:
        """Files at any depth below `folder`, in sorted order; folder links are not followed."""
        files: list[Path] = []
        for path, is_folder in self._entries(folder):
            files.extend(self.files_below(path) if is_folder else [path])
        return files

    def _entries(self, folder: Path) -> list[tuple[Path, bool]]:
        """(path, is_folder) of the folders and readable files in `folder`, in sorted order."""
        entries = []
        for path in sorted(folder.iterdir()):
            if is_hidden(path):
                continue
            if not is_valid_utf8(path.name):
                self.skip(path, NOT_UTF8)
                continue
            kind = self._kind(path)
            if kind in ("folder", "file"):
                entries.append((path, kind == "folder"))
            else:
                self.skip(path, kind)
        return entries

    def once_each(self, items: Sequence[Item], path_of: Callable[[Item], Path]) -> list[Item]:
        """`items` with every real file once: a link is dropped (and counted) when its target is
        in the dataset too, or when an earlier link reached the same file."""
        owner: dict[str, Path] = {}
        for item in items:  # real files first, so that a link never displaces its target
            if path_of(item) not in self._link_target:
                owner.setdefault(str(path_of(item)), path_of(item))
        for item in items:
            owner.setdefault(self._real(path_of(item)), path_of(item))
        kept = []
        for item in items:
            path = path_of(item)
            first = owner[self._real(path)]
            if first == path:
                kept.append(item)
            else:
                self.skip(path, f"the same file as {self.rel(first)} (counted once)")
        return kept

    def _real(self, path: Path) -> str:
        # Folder links are never followed, so a regular file's path below the resolved root is
        # already its realpath; only file links need resolving.
        return self._link_target.get(path, str(path))

    def _kind(self, path: Path) -> str:
        """'folder', 'file', or the reason to skip the entry; never opens it."""
        try:
            info = os.lstat(path)
        except OSError as error:
            return f"cannot be read ({error.strerror})"
        if stat.S_ISDIR(info.st_mode):
            return "folder"
        problem = regular_file_problem(path)
        if stat.S_ISLNK(info.st_mode):
            if problem is not None and problem.endswith("(a folder)"):
                return FOLDER_LINK
            if problem is None:
                self._link_target[path] = os.path.realpath(path)
        return "file" if problem is None else problem
