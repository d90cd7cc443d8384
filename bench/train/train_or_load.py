"""Train an entry, or load its checkpoint when entry, recipe hash and data fingerprint all match."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.data.batches import Normalizer
from bench.data.dataset import LoadedDataset
from bench.environment import environment
from bench.errors import CheckpointError
from bench.pretrain.backbone import load_backbone_into
from bench.pretrain.get_or_pretrain import get_or_pretrain
from bench.train.fit_reference import fit_reference, is_reference_model
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


def recipe_key_hash(entry: ZooEntry, recipe: Recipe) -> str:
    """Everything that decides what training produces, hashed: the recipe, and for a mocov2 entry
    its MoCo recipe too (another backbone means another fine-tuned model). Checkpoints and
    result rows are both keyed by it."""
    if entry.pretraining is not None:
        return f"{recipe.hash()}-{entry.pretraining.hash()}"
    return recipe.hash()


def checkpoint_key(entry: ZooEntry, recipe: Recipe, data: LoadedDataset) -> CheckpointKey:
    return CheckpointKey(entry.name, recipe_key_hash(entry, recipe), data.split_key)


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


def _start_from_pretrained(model: nn.Module, entry: ZooEntry, recipe: Recipe, data: LoadedDataset,
                           store: CheckpointStore, device: torch.device, fresh: bool, progress: bool) -> dict | None:
    """For a pretrained variant: load (or first pretrain) its backbone into `model`; what the manifest records.

    `fresh` pretrains the backbone again too: it is a checkpoint like any other.
    """
    if entry.pretraining is None:
        return None
    backbone = get_or_pretrain(entry, recipe, data, store, device, fresh=fresh, progress=progress)
    load_backbone_into(model, backbone.state)  # only the freshly initialised head is left out
    return backbone.record()


def train_or_load(entry: ZooEntry, recipe: Recipe, data: LoadedDataset, store: CheckpointStore,
                  device: torch.device, *, fresh: bool = False, progress: bool = True) -> TrainedModel:
    key = checkpoint_key(entry, recipe, data)
    if store.exists(key) and not fresh:
        # The checkpoint overwrites every weight: no ImageNet file is needed to load it.
        model = entry.build(input_size=recipe.input_size, dropout=recipe.dropout, pretrained=False)
        manifest = _try_load(store, key, model)
        if manifest is not None:
            return TrainedModel(model.to(device), manifest, store.folder(key), loaded=True)
    elif not fresh and (others := store.others(key)):
        log.info("%s: %d stored checkpoint(s) use another recipe or dataset (%s); training this one",
                 entry.name, len(others), ", ".join(others))

    torch.manual_seed(recipe.seed)  # the initial weights belong to the recipe too
    model = entry.build(input_size=recipe.input_size, dropout=recipe.dropout)
    pretraining = _start_from_pretrained(model, entry, recipe, data, store, device, fresh, progress)
    store.begin(key)
    train, val = data.train_val_split(recipe.val_fraction, recipe.seed)
    normalize = Normalizer(entry.mean, entry.std, device)
    if is_reference_model(model):  # knn.pixels: one fitting pass, no gradient training
        result = fit_reference(model, train, val, normalize)
        store.write_history(key, result.history)
    else:
        result = train_model(model, train, val, recipe, normalize, progress=progress, label=entry.name,
                             on_epoch=lambda history: store.write_history(key, history))
    manifest = {
        "recipe": recipe.as_dict(),
        "input_size": recipe.input_size or entry.input_size,
        "in_channels": entry.in_channels,
        "dataset": data.record(),
        "val_split": {"fraction": recipe.val_fraction, "seed": recipe.seed, "n_train": len(train), "n_val": len(val),
                      "duplicate_groups_kept_whole": data.clean_split is not None},
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "train_seconds": round(result.seconds, 2),
        "data_seconds": round(result.data_seconds, 2),
        "environment": environment(device),
    }
    if pretraining is not None:
        manifest["pretraining"] = pretraining
    manifest = store.save(key, result.best_state, manifest)
    return TrainedModel(model, manifest, store.folder(key), loaded=False)
