"""Train an entry, or load its checkpoint when entry, recipe hash and data fingerprint all match."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.data.batches import Normalizer
from bench.data.dataset import LoadedDataset, train_val_split
from bench.environment import environment
from bench.errors import CheckpointError
from bench.train.loop import train_model
from bench.train.store import CheckpointKey, CheckpointStore
from zoo.entry import ZooEntry
from zoo.recipe import Recipe

log = logging.getLogger("brainbench")


@dataclass
class TrainedModel:
    model: nn.Module
    manifest: dict
    checkpoint_dir: Path
    loaded: bool  # True: came from the store; False: trained in this call


def checkpoint_key(entry: ZooEntry, recipe: Recipe, data: LoadedDataset) -> CheckpointKey:
    return CheckpointKey(entry.name, recipe.hash(), data.fingerprint)


def _history_csv(history: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


def _try_load(store: CheckpointStore, key: CheckpointKey, model: nn.Module) -> dict | None:
    """The manifest if the stored checkpoint loads cleanly; None (after saying why) otherwise."""
    try:
        state, manifest = store.load(key)
        model.load_state_dict(state, strict=True)
        return manifest
    except CheckpointError as error:
        log.warning("%s; training again", error)
    except RuntimeError as error:  # state dict does not fit the architecture
        log.warning("checkpoint %s does not fit %s (%s); training again",
                    store.folder(key), key.entry, str(error).splitlines()[0])
    return None


def train_or_load(entry: ZooEntry, recipe: Recipe, data: LoadedDataset, store: CheckpointStore,
                  device: torch.device, *, fresh: bool = False, progress: bool = True) -> TrainedModel:
    key = checkpoint_key(entry, recipe, data)
    model = entry.build(input_size=recipe.input_size, dropout=recipe.dropout)
    if store.exists(key) and not fresh:
        manifest = _try_load(store, key, model)
        if manifest is not None:
            return TrainedModel(model.to(device), manifest, store.folder(key), loaded=True)
    elif not fresh and (others := store.others(key)):
        log.info("%s: %d stored checkpoint(s) use another recipe or dataset (%s); training this one",
                 entry.name, len(others), ", ".join(others))

    store.begin(key)
    train, val = train_val_split(data.decoded.train, recipe.val_fraction, recipe.seed)
    normalize = Normalizer(entry.mean, entry.std, device)
    result = train_model(model, train, val, recipe, normalize, progress=progress, label=entry.name,
                         on_epoch=lambda history: store.write_history(key, _history_csv(history)))
    manifest = {
        "recipe": recipe.as_dict(),
        "input_size": recipe.input_size or entry.input_size,
        "in_channels": entry.in_channels,
        "dataset": data.record(),
        "val_split": {"fraction": recipe.val_fraction, "seed": recipe.seed, "n_train": len(train), "n_val": len(val)},
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "train_seconds": round(result.seconds, 2),
        "data_seconds": round(result.data_seconds, 2),
        "environment": environment(device),
    }
    manifest = store.save(key, result.best_state, manifest)
    return TrainedModel(model, manifest, store.folder(key), loaded=False)
