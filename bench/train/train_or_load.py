"""Train an entry, or load its checkpoint when entry, recipe hash and data fingerprint all match."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.data.batches import Normalizer
from bench.data.dataset import LoadedDataset
from bench.environment import environment
from bench.errors import CheckpointError, DistributedError
from bench.identity import ResultIdentity, training_identity
from bench.pretrain.backbone import load_backbone_into
from bench.pretrain.get_or_pretrain import get_or_pretrain
from bench.train import distributed, resume
from bench.train.fit_reference import fit_reference, is_reference_model
from bench.train.launch import train_with_torchrun
from bench.train.loop import train_model
from bench.train.settings import DEFAULT_SETTINGS, TrainSettings
from bench.train.store import TRAINED_FIELDS, CheckpointKey, CheckpointStore
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
    """Where `entry` trained with `recipe` on `data` lives in the store (see bench.identity)."""
    return training_identity(entry, recipe, data).checkpoint_key()


def _try_load(store: CheckpointStore, key: CheckpointKey, model: nn.Module,
              classes: tuple[str, ...]) -> dict | None:
    """The manifest if the stored checkpoint loads cleanly; None (after saying why) otherwise."""
    try:
        state, manifest = store.load(key, require=TRAINED_FIELDS)
        check_classes(manifest, classes, store.folder(key))
        model.load_state_dict(state, strict=True)
        return manifest
    except CheckpointError as error:
        log.warning("%s; training again", error)
    except RuntimeError as error:  # state dict does not fit the architecture
        log.warning("checkpoint %s does not fit %s (%s); training again",
                    store.folder(key), key.entry, str(error).splitlines()[0])
    return None


def check_classes(manifest: dict, classes: tuple[str, ...], where: Path) -> None:
    """A checkpoint predicts the classes it was trained on, in their order: refuse it for others."""
    stored = tuple(manifest["input_contract"].get("classes") or ())
    if stored != tuple(classes):
        raise CheckpointError(f"checkpoint {where} was trained on classes {', '.join(stored) or '(none recorded)'}, "
                              f"not this dataset's {', '.join(classes)}")


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


def _load_after_torchrun(entry: ZooEntry, recipe: Recipe, store: CheckpointStore, key: CheckpointKey,
                         device: torch.device, classes: tuple[str, ...]) -> TrainedModel:
    """The checkpoint the torchrun workers just stored, loaded like any other."""
    model = entry.build(input_size=recipe.input_size, dropout=recipe.dropout, num_classes=len(classes),
                        pretrained=False)
    manifest = _try_load(store, key, model, classes)
    if manifest is None:
        raise DistributedError(f"torchrun training of {entry.name} finished but left no loadable checkpoint "
                               f"in {store.folder(key)}")
    return TrainedModel(model.to(device), manifest, store.folder(key), loaded=False)


def train_or_load(entry: ZooEntry, recipe: Recipe, data: LoadedDataset, store: CheckpointStore,
                  device: torch.device, *, fresh: bool = False, progress: bool = True,
                  settings: TrainSettings = DEFAULT_SETTINGS) -> TrainedModel:
    """Load the stored checkpoint, or train one (resuming an interrupted training of the same key).

    Inside a torchrun process group every rank calls this; rank 0 alone writes the store. With
    `settings.nproc` > 1 outside one, the training runs in that many torchrun processes instead.
    """
    identity = training_identity(entry, recipe, data)
    key = identity.checkpoint_key()
    classes = tuple(data.labels.names)
    ranks = distributed.current()
    if distributed.launched_by_torchrun() and not ranks.active:
        raise DistributedError("started by torchrun without a process group: every process would train alone; "
                               "use `brainbench train --nproc N` or `brainbench run --nproc N` instead")
    if store.exists(key) and not fresh:
        # The checkpoint overwrites every weight: no ImageNet file is needed to load it.
        model = entry.build(input_size=recipe.input_size, dropout=recipe.dropout, num_classes=len(classes),
                            pretrained=False)
        manifest = _try_load(store, key, model, classes)
        if manifest is not None:
            return TrainedModel(model.to(device), manifest, store.folder(key), loaded=True)
    elif not fresh and (others := store.others(key)):
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        log.info("%s: %d stored checkpoint(s) use another recipe, dataset or fold (%s); training this one",
                 entry.name, len(others), shown)
    if settings.nproc > 1 and not ranks.active:
        train_with_torchrun(entry, recipe, data, store, key, device, nproc=settings.nproc,
                            compile_step=settings.compile_step, fresh=fresh, progress=progress)
        return _load_after_torchrun(entry, recipe, store, key, device, classes)

    torch.manual_seed(recipe.seed)  # the initial weights belong to the recipe too
    model = entry.build(input_size=recipe.input_size, dropout=recipe.dropout, num_classes=len(classes))
    pretraining = _start_from_pretrained(model, entry, recipe, data, store, device, fresh, progress)
    # Rank 0 holds the key's training lock until the checkpoint is stored or the training fails, so
    # a second training of the same key (another process) is refused instead of tearing its files.
    with store.training(key) if ranks.is_main else contextlib.nullcontext():
        manifest = _train_and_store(model, entry, recipe, data, store, key, identity, settings, fresh=fresh,
                                    progress=progress, pretraining=pretraining, ranks=ranks, device=device)
    return TrainedModel(model, manifest, store.folder(key), loaded=False)


def _train_and_store(model: nn.Module, entry: ZooEntry, recipe: Recipe, data: LoadedDataset, store: CheckpointStore,
                     key: CheckpointKey, identity: ResultIdentity, settings: TrainSettings, *, fresh: bool,
                     progress: bool, pretraining: dict | None, ranks: distributed.Ranks,
                     device: torch.device) -> dict:
    """Train `model` in place (resuming a saved state unless `fresh`); rank 0 stores it. The manifest."""
    train, val = data.train_val_split(recipe.val_fraction, recipe.seed)
    normalize = Normalizer(entry.mean, entry.std, device)
    if is_reference_model(model):  # knn.pixels: one fitting pass, no gradient training
        result = fit_reference(model, train, val, normalize)
        if ranks.is_main:
            store.write_history(key, result.history)
    else:
        if fresh and ranks.is_main:
            store.clear_resume(key)
        saved = None if fresh else resume.saved_state(store, key, model)
        writes = ranks.is_main  # the other ranks hold the same model; one writer keeps the store consistent
        result = train_model(model, train, val, recipe, normalize, progress=progress, label=entry.name,
                             compile_step=settings.compile_step, resume_from=saved,
                             on_epoch=(lambda history: store.write_history(key, history)) if writes else None,
                             save_state=(lambda state: store.save_resume(key, state)) if writes else None)
    manifest = {
        "recipe": recipe.as_dict(),
        "input_size": identity.contract.size,
        "in_channels": identity.contract.channels,
        "input_contract": identity.contract.record(),  # predict normalizes and names classes from this
        "identity": identity.record(),
        "dataset": data.record(),
        "val_split": {"fraction": recipe.val_fraction, "seed": recipe.seed, "n_train": len(train), "n_val": len(val),
                      "duplicate_groups_kept_whole": data.clean_split is not None,
                      "groups_kept_whole": data.clean_split is not None
                      or (data.split is not None and data.split.groups is not None)},
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_val": result.best_val,
        "train_seconds": round(result.seconds, 2),
        "data_seconds": round(result.data_seconds, 2),
        "resumed_after_epoch": result.resumed_from_epoch,
        "processes": ranks.world_size,
        "environment": environment(device),
    }
    if pretraining is not None:
        manifest["pretraining"] = pretraining
    if ranks.is_main:
        manifest = store.save(key, result.best_state, manifest)
    return manifest
