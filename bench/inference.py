"""Predict class probabilities for image files with a trained checkpoint from the store.

Three steps, each reusable on its own:

    latest_checkpoint(store, "cnn3.scratch")  -> the folder of the most recently trained checkpoint
    load_checkpoint(folder, device)           -> the model, verified against its manifest's sha256
    predict_images(loaded, paths)             -> one Prediction per path, in order

Preprocessing and classes come from the checkpoint's manifest, not from the entry's defaults: a
model trained with `--input-size 64 --crop-to-content` sees 64 px cropped images here too, and a
model of a three-class dataset answers with those three classes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import zoo
from bench.data.batches import Normalizer
from bench.data.cache import Preprocessing
from bench.data.decode import decode_image
from bench.errors import BrainbenchError, CheckpointError, ImageDecodeError
from bench.evaluate.predict import predict_logits
from bench.identity import InputContract
from bench.train.store import MANIFEST, CheckpointKey, CheckpointStore
from zoo.entry import ZooEntry

log = logging.getLogger("brainbench")


class NoCheckpointError(BrainbenchError):
    """The store holds no finished checkpoint of an entry."""


# --- choosing a checkpoint ------------------------------------------------------------------

@dataclass(frozen=True)
class StoredCheckpoint:
    """A finished checkpoint as listed in the store; its weights are not read or verified yet."""

    folder: Path
    manifest: dict
    date: dt.datetime  # when training finished, from manifest["environment"]["date"]


def _read_stored(folder: Path) -> StoredCheckpoint:
    """Raises OSError, ValueError (bad JSON or date), KeyError or TypeError for a broken manifest."""
    manifest = json.loads((folder / MANIFEST).read_text())
    date = dt.datetime.fromisoformat(manifest["environment"]["date"])
    # environment() writes UTC with an offset; a hand-edited date without one must still compare.
    return StoredCheckpoint(folder, manifest, date if date.tzinfo else date.replace(tzinfo=dt.timezone.utc))


def stored_checkpoints(store_root: Path | str, entry_name: str) -> list[StoredCheckpoint]:
    """Finished checkpoints of `entry_name`, oldest first.

    A folder without a manifest is an unfinished training run and is ignored, as the store
    intends. A manifest that cannot be read or has no training date is skipped with a
    warning naming it: one broken folder should not block predicting with the others.
    """
    entry_dir = Path(store_root).expanduser() / entry_name
    found = []
    for folder in sorted(entry_dir.iterdir()) if entry_dir.is_dir() else ():
        if not (folder / MANIFEST).is_file():
            continue
        try:
            found.append(_read_stored(folder))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            log.warning("skipping checkpoint %s: its manifest is unreadable (%s: %s)",
                        folder, type(error).__name__, error)
    # Folder name breaks ties so that the choice never depends on directory order.
    return sorted(found, key=lambda c: (c.date, c.folder.name))


def latest_checkpoint(store_root: Path | str, entry_name: str) -> Path:
    """The folder of the most recently trained finished checkpoint; NoCheckpointError if none."""
    found = stored_checkpoints(store_root, entry_name)
    if not found:
        raise NoCheckpointError(
            f"no trained checkpoint of {entry_name} in the store {Path(store_root).expanduser()}; "
            f"train one with `brainbench train {entry_name}` (or pass --store / --checkpoint)"
        )
    return found[-1].folder


def key_of_folder(folder: Path) -> tuple[CheckpointStore, CheckpointKey]:
    """The store and key a checkpoint folder stands for, read from its place in the store layout.

    Taking the key from the path (not from the manifest inside) is what lets
    `CheckpointStore.load` catch a manifest that does not belong to its folder.
    """
    folder = Path(folder).expanduser().resolve()
    model_hash, dash, fingerprint = folder.name.partition("-")
    if not dash or not model_hash or not fingerprint:
        raise CheckpointError(
            f"{folder} is not a checkpoint folder: expected <store>/<entry>/<model hash>-<dataset fingerprint>"
        )
    return CheckpointStore(folder.parent.parent), CheckpointKey(folder.parent.name, model_hash, fingerprint)


# --- loading --------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    entry: ZooEntry
    model: nn.Module  # on `device`, in eval mode
    manifest: dict
    folder: Path
    device: torch.device

    contract: InputContract  # what the checkpoint was trained on: size, channels, mean/std, classes

    @property
    def preprocessing(self) -> Preprocessing:
        """Exactly what the training images went through: size, channels, crop."""
        return Preprocessing(self.contract.size, self.contract.channels, self.contract.crop_to_content,
                             self.contract.resize)

    def describe(self) -> str:
        """One line telling the user which checkpoint answers: folder, data, quality, age."""
        m, prep = self.manifest, self.preprocessing
        crop = ", cropped to content" if prep.crop_to_content else ""
        metric = "dice" if self.entry.task == "segmentation" else "acc"
        val = (m.get("best_val") or {}).get(metric)
        val_text = f"{val:.4f}" if isinstance(val, (int, float)) else "unknown"
        return (f"{self.entry.name}: checkpoint {self.folder} (dataset fingerprint {m.get('dataset_fingerprint')}, "
                f"best val {'Dice' if metric == 'dice' else metric} {val_text}, "
                f"trained {(m.get('environment') or {}).get('date', 'unknown')}, "
                f"input {prep.channels}x{prep.size}x{prep.size}{crop})")


def load_checkpoint(folder: Path | str, device: torch.device | str = "cpu",
                    expected_classes: Sequence[str] | None = None) -> LoadedModel:
    """Build the entry's model and load the checkpoint's weights; CheckpointError names a bad folder.

    expected_classes: the class names, in output order, the caller will read the model's answers
    as (another checkpoint's, a dataset's label set); a checkpoint trained on other classes is
    refused rather than read under the wrong names.
    """
    store, key = key_of_folder(Path(folder))
    entry = zoo.get(key.entry)
    state, manifest = store.load(key)  # verifies the weights' sha256 against the manifest
    contract = _contract_of(manifest, store.folder(key))
    if contract.channels != entry.in_channels:
        raise CheckpointError(f"checkpoint {store.folder(key)} was trained with {contract.channels} "
                              f"input channels, but {entry.name} now takes {entry.in_channels}")
    if expected_classes is not None and tuple(expected_classes) != contract.classes:
        raise CheckpointError(f"checkpoint {store.folder(key)} of {entry.name} predicts the classes "
                              f"{list(contract.classes)}, not the expected {list(expected_classes)}")
    # pretrained=False: the checkpoint overwrites every weight, so no ImageNet file is needed here.
    # The head has one output per class the checkpoint was trained on, not the zoo's default count.
    model = entry.build(input_size=contract.size, dropout=(manifest.get("recipe") or {}).get("dropout"),
                        num_classes=len(contract.classes), pretrained=False)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:  # the architecture changed since this checkpoint was trained
        raise CheckpointError(f"checkpoint {store.folder(key)} does not fit {entry.name}: "
                              f"{str(error).splitlines()[0]}") from None
    device = torch.device(device)
    return LoadedModel(entry, model.to(device).eval(), manifest, store.folder(key), device, contract)


def _contract_of(manifest: dict, folder: Path) -> InputContract:
    """The input contract the manifest recorded; the zoo's current mean/std may have changed since."""
    record = manifest.get("input_contract")
    if not isinstance(record, dict):
        raise CheckpointError(f"checkpoint {folder} records no input contract (stored by an older brainbench); "
                              f"train it again")
    try:
        contract = InputContract.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"manifest {folder / MANIFEST}: input_contract is damaged ({type(error).__name__}: "
                              f"{error})") from None
    # A classifier names two or more classes; a segmenter its mask channels (one: the tumour).
    fewest = 1 if manifest.get("task") == "segmentation" else 2
    if len(contract.classes) < fewest or not all(isinstance(c, str) for c in contract.classes):
        raise CheckpointError(f"manifest {folder / MANIFEST}: input_contract.classes must name {fewest} or more "
                              f"classes, got {list(contract.classes)}")
    return contract


# --- predicting -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    path: Path
    probabilities: dict[str, float] | None  # class name -> probability in [0, 1]; None if unreadable
    error: str | None = None  # why the image could not be read

    @property
    def predicted(self) -> str | None:
        if self.probabilities is None:
            return None
        return max(self.probabilities, key=self.probabilities.__getitem__)


def decode_for(prep: Preprocessing, path: Path) -> np.ndarray:
    """uint8 (C, H, W) as the training cache would hold it; ImageDecodeError with a short reason."""
    path = Path(path)
    # PIL's own message for a missing file is a long errno text; say it plainly.
    if not path.exists():
        raise ImageDecodeError("no such file")
    if not path.is_file():
        raise ImageDecodeError("not a file")
    try:
        return decode_image(path, prep.size, prep.channels, prep.crop_to_content, prep.resize)
    except ImageDecodeError as error:
        # The table already shows the file, so drop decode_image's "<path>: " prefix.
        raise ImageDecodeError(str(error).removeprefix(f"{path}: ")) from None


def predict_images(loaded: LoadedModel, paths: Sequence[Path | str], *, batch_size: int = 64) -> list[Prediction]:
    """One Prediction per path, in order; unreadable images get a Prediction with `error` set."""
    prep = loaded.preprocessing
    arrays: dict[int, np.ndarray] = {}
    errors: dict[int, str] = {}
    for i, path in enumerate(paths):
        try:
            arrays[i] = decode_for(prep, Path(path))
        except ImageDecodeError as error:
            errors[i] = str(error)
    probabilities = _probabilities(loaded, list(arrays.values()), batch_size)
    by_index = dict(zip(arrays, probabilities))
    return [Prediction(Path(path), by_index.get(i), errors.get(i)) for i, path in enumerate(paths)]


def _probabilities(loaded: LoadedModel, arrays: list[np.ndarray], batch_size: int) -> list[dict[str, float]]:
    if not arrays:
        return []
    images = torch.from_numpy(np.stack(arrays))
    normalize = Normalizer(loaded.contract.mean, loaded.contract.std, loaded.device)
    probs = torch.softmax(predict_logits(loaded.model, images, normalize, batch_size=batch_size), dim=1)
    return [dict(zip(loaded.contract.classes, row.tolist(), strict=True)) for row in probs]
