"""The checkpoint store: safetensors weights plus a JSON manifest, one folder per key.

    <store>/<entry>/<model hash>-<data key>/      (bench.identity: entry, input contract, recipe; fingerprint and split)
        model.safetensors   weights only: loading never unpickles anything
        manifest.json       entry, recipe, hashes, best validation metrics, environment
        history.csv         per-epoch train and validation loss and accuracy
        resume.pt           only while unfinished: the last epoch's full training state
        train.lock          only while a training runs: its advisory lock (flock), so that two
                            processes never train into one folder at once

Every file is written to a temporary name and renamed into place (bench.io); a failed write
(a full disk, a file-size limit) is a one-line CheckpointError naming the file, and leaves the
previous file intact and no temporary file behind. The manifest is written last and removed
first, so a folder without one is an unfinished checkpoint and is ignored (except by a training
of the same key, which resumes from its resume.pt). Weights with a nan or inf are never written
and never loaded.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

from bench.data.fingerprint import file_sha256
from bench.errors import CheckpointBusyError, CheckpointError
from bench.io import FILE_MODE, atomic_path, remove_stale_temporaries, write_atomically

MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
HISTORY = "history.csv"
RESUME = "resume.pt"
LOCK = "train.lock"
FORMAT_VERSION = 2  # 2: keyed by the model hash of bench.identity (1: by the recipe hash)

# The manifest fields load() itself reads, and their types; callers may ask for more (load's `require`).
STORE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": int, "entry": str, "model_hash": str, "dataset_fingerprint": str, "weights_sha256": str,
}
# What a trained classifier's manifest must hold for `brainbench train` and the runner to report it.
TRAINED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "epochs_run": int, "best_epoch": int, "best_val": dict, "recipe": dict, "input_size": int,
    "input_contract": dict,
}

# Lock files this process holds, by path, with their descriptors. flock excludes other processes;
# within one process a second lock() of a held key is a no-op, so a retraining after an
# exception in the same process is not refused by the lock it left behind.
_HELD_LOCKS: dict[Path, int] = {}


@dataclass(frozen=True)
class CheckpointKey:
    entry: str
    model_hash: str  # bench.identity: entry, input contract and recipe, hashed
    fingerprint: str

    def folder(self, root: Path) -> Path:
        return Path(root) / self.entry / f"{self.model_hash}-{self.fingerprint}"


def first_nonfinite(tensors: Mapping[str, torch.Tensor]) -> tuple[str, str] | None:
    """(name, "nan" or "inf") of the first floating-point tensor holding a nan or inf; None if all are finite."""
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        if not bool(torch.isfinite(tensor).all()):
            return name, "nan" if bool(torch.isnan(tensor).any()) else "inf"
    return None


def _os_error_in(error: BaseException | None) -> OSError | None:
    """The OSError behind `error`: torch.save reports a failed write as a RuntimeError whose
    context is the file object's OSError."""
    while error is not None:
        if isinstance(error, OSError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _describe(error: OSError) -> str:
    """`File too large (EFBIG)`: the words and the errno name, without repeating the path."""
    name = errno.errorcode.get(error.errno or 0)
    return f"{error.strerror or error}" + (f" ({name})" if name else "")


def _remove_directory_at(path: Path) -> None:
    """A directory where one of our files belongs goes (os.replace cannot put a file in its place)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)


def _remove(path: Path) -> None:
    """Remove whatever sits at `path`: a file, or a directory left where a file belongs."""
    _remove_directory_at(path)
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def _written(path: Path) -> Iterator[Path]:
    """A temporary file to write `path` through (bench.io.atomic_path); an OSError on the way is a
    one-line CheckpointError naming the file, and the temporary file is gone."""
    try:
        _remove_directory_at(path)
        with atomic_path(path) as tmp:
            yield tmp
    except (OSError, RuntimeError, SafetensorError) as error:
        cause = _os_error_in(error)
        if cause is None:
            raise
        raise CheckpointError(f"cannot write {path}: {_describe(cause)}") from None


def _check_fields(manifest: dict, fields: Mapping[str, type | tuple[type, ...]], path: Path) -> None:
    for name, kind in fields.items():
        if name not in manifest:
            raise CheckpointError(f"manifest {path} has no field {name!r}")
        value = manifest[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            expected = " or ".join(k.__name__ for k in kinds)
            raise CheckpointError(f"manifest {path}: field {name!r} is {value!r}, expected {expected}")


def _same_file(fd: int, path: Path) -> bool:
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


class CheckpointStore:
    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()

    def folder(self, key: CheckpointKey) -> Path:
        return key.folder(self.root)

    def exists(self, key: CheckpointKey) -> bool:
        """Whether a finished checkpoint claims to be there; load() decides whether it is sound (a
        directory in the manifest's place counts, so that it is reported and retrained, not skipped)."""
        return (self.folder(key) / MANIFEST).exists()

    def _make_folder(self, folder: Path) -> Path:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a regular file where a folder must be, a read-only or full disk
            raise CheckpointError(f"cannot create checkpoint folder {folder}: {_describe(error)}") from None
        return folder

    def begin(self, key: CheckpointKey) -> Path:
        """Prepare the folder for a (re)training run: take its lock (CheckpointBusyError if another
        process holds it), and an old manifest stops counting as finished."""
        folder = self._make_folder(self.folder(key))
        self.lock(key)
        remove_stale_temporaries(folder)  # left by a training killed mid-write; the lock says none runs
        try:
            _remove(folder / MANIFEST)
        except OSError as error:
            raise CheckpointError(f"cannot remove {folder / MANIFEST}: {_describe(error)}") from None
        return folder

    @contextlib.contextmanager
    def training(self, key: CheckpointKey) -> Iterator[Path]:
        """begin(), and the lock is released when the block ends, whether training finished or failed."""
        try:
            yield self.begin(key)
        finally:
            self.unlock(key)

    def lock(self, key: CheckpointKey) -> Path:
        """Hold `key`'s training lock until unlock() or the end of this process (the kernel releases
        an flock with its last descriptor, so a killed training never leaves a stale lock)."""
        path = self._make_folder(self.folder(key)) / LOCK
        if path in _HELD_LOCKS:
            return path
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            except OSError as error:
                raise CheckpointError(f"cannot create lock file {path}: {_describe(error)}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise CheckpointBusyError(
                    f"{key.entry} is being trained into {path.parent} by another process ({self._holder(path)} "
                    f"holds the lock {path}); wait for it to finish, or use another --store") from None
            if _same_file(fd, path):
                break
            os.close(fd)  # its holder removed it between our open and our lock: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the message of whoever is refused
        _HELD_LOCKS[path] = fd
        return path

    def unlock(self, key: CheckpointKey) -> None:
        """Release `key`'s training lock if this process holds it; a no-op otherwise."""
        path = self.folder(key) / LOCK
        fd = _HELD_LOCKS.pop(path, None)
        if fd is None:
            return
        # Removed while still locked, so a process that opened it meanwhile sees another inode and retries.
        path.unlink(missing_ok=True)
        os.close(fd)

    @staticmethod
    def _holder(path: Path) -> str:
        try:
            pid = path.read_text().strip()
        except OSError:
            pid = ""
        return f"pid {pid}" if pid.isdigit() else "another process"

    def write_history(self, key: CheckpointKey, rows: list[dict]) -> None:
        """history.csv of a checkpoint: one row per epoch, columns from the first row."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        self._write_bytes(self.folder(key) / HISTORY, out.getvalue().encode())

    def save(self, key: CheckpointKey, state_dict: dict[str, torch.Tensor], manifest: dict) -> dict:
        """Write weights, then the manifest; returns the manifest as written. Releases the training lock."""
        folder = self._make_folder(self.folder(key))
        tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in state_dict.items()}
        if bad := first_nonfinite(tensors):
            raise CheckpointError(f"refusing to store {key.entry} in {folder}: weight {bad[0]} holds {bad[1]}")
        self._write_bytes(folder / WEIGHTS, safetensors_bytes(tensors, metadata={"entry": key.entry}))
        manifest = {
            "format": FORMAT_VERSION,
            "entry": key.entry,
            "model_hash": key.model_hash,
            "dataset_fingerprint": key.fingerprint,
            "weights_file": WEIGHTS,
            "weights_sha256": file_sha256(folder / WEIGHTS),
            **manifest,
        }
        self._write_bytes(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
        self.clear_resume(key)  # finished: nothing left to resume
        self.unlock(key)
        return manifest

    @staticmethod
    def _write_bytes(path: Path, data: bytes) -> None:
        try:
            _remove_directory_at(path)
            write_atomically(path, data)
        except OSError as error:
            raise CheckpointError(f"cannot write {path}: {_describe(error)}") from None

    def save_resume(self, key: CheckpointKey, state: dict) -> None:
        """The training state after an epoch (see bench.train.resume), tagged with its key, atomically."""
        path = self.folder(key) / RESUME
        if bad := first_nonfinite(state.get("model", {})):
            raise CheckpointError(f"refusing to write {path}: weight {bad[0]} holds {bad[1]}")
        with _written(path) as tmp, open(tmp, "wb") as out:
            # Through a Python file, so that a failed write surfaces its OSError (see _os_error_in).
            torch.save({**state, "key": [key.entry, key.model_hash, key.fingerprint]}, out)
            out.flush()
            os.fsync(out.fileno())

    def load_resume(self, key: CheckpointKey) -> dict | None:
        """The saved training state of an unfinished checkpoint, None if there is none.

        Loaded with weights_only=True: tensors and plain containers, never arbitrary objects.
        """
        path = self.folder(key) / RESUME
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - truncated zip, pickle or version errors, a directory
            raise CheckpointError(f"resume state {path} is unreadable: {str(error).splitlines()[0]}") from None
        expected = [key.entry, key.model_hash, key.fingerprint]
        if not isinstance(state, dict) or state.get("key") != expected:
            raise CheckpointError(f"resume state {path} belongs to another checkpoint: "
                                  f"{state.get('key') if isinstance(state, dict) else state!r}, expected {expected}")
        if isinstance(state.get("model"), dict) and (bad := first_nonfinite(state["model"])):
            raise CheckpointError(f"resume state {path} is unusable: weight {bad[0]} holds {bad[1]}")
        return state

    def clear_resume(self, key: CheckpointKey) -> None:
        try:
            _remove(self.folder(key) / RESUME)
        except OSError as error:
            raise CheckpointError(f"cannot remove {self.folder(key) / RESUME}: {_describe(error)}") from None

    def load(self, key: CheckpointKey, require: Mapping[str, type | tuple[type, ...]] | None = None,
             ) -> tuple[dict[str, torch.Tensor], dict]:
        """Weights and manifest of `key`; CheckpointError if the files disagree with the key or each
        other, a field load() reads (or one in `require`) is missing or mistyped, or a weight is not finite."""
        folder = self.folder(key)
        manifest_path, weights = folder / MANIFEST, folder / WEIGHTS
        if manifest_path.is_dir():
            raise CheckpointError(f"manifest {manifest_path} is a directory, not a file")
        try:
            manifest = json.loads(manifest_path.read_text())
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {folder}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"manifest {manifest_path} is unreadable: {error}") from None
        if not isinstance(manifest, dict):
            raise CheckpointError(f"manifest {manifest_path} is not a JSON object")
        _check_fields(manifest, {**STORE_FIELDS, **(require or {})}, manifest_path)
        if manifest["format"] != FORMAT_VERSION:
            raise CheckpointError(f"manifest {manifest_path} has format {manifest['format']}, "
                                  f"this brainbench reads format {FORMAT_VERSION}")
        expected = {"entry": key.entry, "model_hash": key.model_hash, "dataset_fingerprint": key.fingerprint}
        for field, value in expected.items():
            if manifest.get(field) != value:
                raise CheckpointError(
                    f"checkpoint {folder} does not match: manifest has {field}={manifest.get(field)!r}, "
                    f"expected {value!r}"
                )
        if weights.is_dir():
            raise CheckpointError(f"weights {weights} is a directory, not a file")
        if not weights.is_file():
            raise CheckpointError(f"checkpoint {folder} has a manifest but no {WEIGHTS}")
        try:
            if file_sha256(weights) != manifest["weights_sha256"]:
                raise CheckpointError(f"weights {weights} are corrupted: sha256 differs from the manifest's")
            state = load_file(weights)
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(f"weights {weights} cannot be read: {error}") from None
        if bad := first_nonfinite(state):
            raise CheckpointError(f"weights {weights} are unusable: tensor {bad[0]} holds {bad[1]}")
        return state, manifest

    def others(self, key: CheckpointKey) -> list[str]:
        """Finished checkpoints of the same entry under other recipes or data, for a helpful note."""
        entry_dir = self.root / key.entry
        if not entry_dir.is_dir():
            return []
        mine = self.folder(key).name
        return sorted(p.name for p in entry_dir.iterdir() if p.name != mine and (p / MANIFEST).is_file())
