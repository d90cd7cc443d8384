"""The checkpoint store: safetensors weights plus a JSON manifest, one folder per key.

    <store>/<entry>/<recipe hash>-<dataset fingerprint>/
        model.safetensors   weights only: loading never unpickles anything
        manifest.json       entry, recipe, hashes, best validation metrics, environment
        history.csv         per-epoch train and validation loss and accuracy
        resume.pt           only while unfinished: the last epoch's full training state

Every file is written to a temporary name and renamed into place. The manifest is written
last and removed first, so a folder without one is an unfinished checkpoint and is ignored
(except by a training of the same key, which resumes from its resume.pt).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from bench.data.fingerprint import file_sha256
from bench.errors import CheckpointError
from bench.io import atomic_path, write_atomically

MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
HISTORY = "history.csv"
RESUME = "resume.pt"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointKey:
    entry: str
    recipe_hash: str
    fingerprint: str

    def folder(self, root: Path) -> Path:
        return Path(root) / self.entry / f"{self.recipe_hash}-{self.fingerprint}"


class CheckpointStore:
    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser()

    def folder(self, key: CheckpointKey) -> Path:
        return key.folder(self.root)

    def exists(self, key: CheckpointKey) -> bool:
        return (self.folder(key) / MANIFEST).is_file()

    def begin(self, key: CheckpointKey) -> Path:
        """Prepare the folder for a (re)training run: an old manifest stops counting as finished."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)
        return folder

    def write_history(self, key: CheckpointKey, rows: list[dict]) -> None:
        """history.csv of a checkpoint: one row per epoch, columns from the first row."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_atomically(self.folder(key) / HISTORY, out.getvalue().encode())

    def save(self, key: CheckpointKey, state_dict: dict[str, torch.Tensor], manifest: dict) -> dict:
        """Write weights, then the manifest; returns the manifest as written."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in state_dict.items()}
        with atomic_path(folder / WEIGHTS) as tmp:
            save_file(tensors, tmp, metadata={"entry": key.entry})
        manifest = {
            "format": FORMAT_VERSION,
            "entry": key.entry,
            "recipe_hash": key.recipe_hash,
            "dataset_fingerprint": key.fingerprint,
            "weights_file": WEIGHTS,
            "weights_sha256": file_sha256(folder / WEIGHTS),
            **manifest,
        }
        write_atomically(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
        self.clear_resume(key)  # finished: nothing left to resume
        return manifest

    def save_resume(self, key: CheckpointKey, state: dict) -> None:
        """The training state after an epoch (see bench.train.resume), tagged with its key, atomically."""
        path = self.folder(key) / RESUME
        with atomic_path(path) as tmp:
            torch.save({**state, "key": [key.entry, key.recipe_hash, key.fingerprint]}, tmp)

    def load_resume(self, key: CheckpointKey) -> dict | None:
        """The saved training state of an unfinished checkpoint, None if there is none.

        Loaded with weights_only=True: tensors and plain containers, never arbitrary objects.
        """
        path = self.folder(key) / RESUME
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - truncated zip, pickle or version errors alike
            raise CheckpointError(f"resume state {path} is unreadable: {str(error).splitlines()[0]}") from None
        expected = [key.entry, key.recipe_hash, key.fingerprint]
        if not isinstance(state, dict) or state.get("key") != expected:
            raise CheckpointError(f"resume state {path} belongs to another checkpoint: "
                                  f"{state.get('key') if isinstance(state, dict) else state!r}, expected {expected}")
        return state

    def clear_resume(self, key: CheckpointKey) -> None:
        (self.folder(key) / RESUME).unlink(missing_ok=True)

    def load(self, key: CheckpointKey) -> tuple[dict[str, torch.Tensor], dict]:
        """Weights and manifest of `key`; CheckpointError if the files disagree with the key or each other."""
        folder = self.folder(key)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            raise CheckpointError(f"no checkpoint at {folder}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"manifest {folder / MANIFEST} is unreadable: {error}") from None
        if not isinstance(manifest, dict):
            raise CheckpointError(f"manifest {folder / MANIFEST} is not a JSON object")
        expected = {"entry": key.entry, "recipe_hash": key.recipe_hash, "dataset_fingerprint": key.fingerprint}
        for field, value in expected.items():
            if manifest.get(field) != value:
                raise CheckpointError(
                    f"checkpoint {folder} does not match: manifest has {field}={manifest.get(field)!r}, "
                    f"expected {value!r}"
                )
        weights = folder / WEIGHTS
        if not weights.is_file():
            raise CheckpointError(f"checkpoint {folder} has a manifest but no {WEIGHTS}")
        if file_sha256(weights) != manifest.get("weights_sha256"):
            raise CheckpointError(f"weights {weights} are corrupted: sha256 differs from the manifest's")
        try:
            return load_file(weights), manifest
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(f"weights {weights} cannot be read: {error}") from None

    def others(self, key: CheckpointKey) -> list[str]:
        """Finished checkpoints of the same entry under other recipes or data, for a helpful note."""
        entry_dir = self.root / key.entry
        if not entry_dir.is_dir():
            return []
        mine = self.folder(key).name
        return sorted(p.name for p in entry_dir.iterdir() if p.name != mine and (p / MANIFEST).is_file())
