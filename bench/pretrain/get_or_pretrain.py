"""Load an entry's stored MoCo v2 backbone, or pretrain it and store it (weights, manifest, history)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.data.dataset import LoadedDataset
from bench.environment import environment
from bench.errors import CheckpointError
from bench.identity import backbone_identity
from bench.pretrain.backbone import load_backbone_into
from bench.pretrain.pretrain_loop import pretrain_moco
from bench.train.store import CheckpointKey, CheckpointStore
from zoo.entry import ZooEntry
from zoo.recipe import Recipe

log = logging.getLogger("brainbench")


@dataclass
class PretrainedBackbone:
    state: dict[str, torch.Tensor]  # backbone weights: the classifier's state dict without the head
    manifest: dict
    key: CheckpointKey
    folder: Path
    loaded: bool  # True: came from the store; False: pretrained in this call

    def record(self) -> dict:
        """What a fine-tuned checkpoint's manifest says about the backbone it started from."""
        return {"method": "mocov2", "backbone_entry": self.key.entry, "backbone_model_hash": self.key.model_hash,
                "backbone_folder": str(self.folder), "backbone_loaded_from_store": self.loaded,
                "moco_recipe": self.manifest["moco_recipe"], "final_loss": self.manifest["final_loss"],
                "pretrain_seconds": self.manifest["pretrain_seconds"]}


def _fits(entry: ZooEntry, state: dict[str, torch.Tensor]) -> bool:
    """Whether stored weights still fit the architecture (its code may have changed since)."""
    try:
        load_backbone_into(entry.build(dropout=0.0), state)
        return True
    except CheckpointError as error:
        log.warning("stored backbone for %s: %s; pretraining again", entry.name, error)
        return False


def get_or_pretrain(entry: ZooEntry, recipe: Recipe, data: LoadedDataset, store: CheckpointStore,
                    device: torch.device, *, fresh: bool = False, progress: bool = True) -> PretrainedBackbone:
    """The backbone for fine-tuning `entry` with `recipe` on `data`; pretrains only if none is stored."""
    moco, identity = entry.pretraining, backbone_identity(entry, recipe, data)
    key = identity.checkpoint_key()
    if store.exists(key) and not fresh:
        try:
            state, manifest = store.load(key)
            if _fits(entry, state):
                return PretrainedBackbone(state, manifest, key, store.folder(key), loaded=True)
        except CheckpointError as error:
            log.warning("%s; pretraining again", error)

    store.begin(key)
    # Only the images fine-tuning trains on: the validation part of Training stays unseen.
    # On the clean split, too: the split fine-tuning uses, whose validation keeps duplicate groups whole.
    train, val = data.train_val_split(recipe.val_fraction, recipe.seed)
    result = pretrain_moco(entry, moco, train.images, device, progress=progress, label=entry.name,
                           on_epoch=lambda history: store.write_history(key, history))
    manifest = {
        "pretraining": "mocov2",
        "arch": entry.arch,
        "moco_recipe": moco.as_dict(),
        "moco_recipe_hash": moco.hash(),
        "identity": identity.record(),
        "dataset": data.record(),
        "n_pretrain_images": len(train),
        "n_val_images_held_out": len(val),
        "feature_dim": result.feature_dim,
        "head": result.head_name,
        "queue_size": result.queue_size,
        "batch_size": result.batch_size,
        "epochs_run": len(result.history),
        "final_loss": result.final_loss,
        "final_instance_acc": result.history[-1]["instance_acc"],
        "pretrain_seconds": round(result.seconds, 2),
        "data_seconds": round(result.data_seconds, 2),
        "environment": environment(device),
    }
    manifest = store.save(key, result.backbone_state, manifest)
    return PretrainedBackbone(result.backbone_state, manifest, key, store.folder(key), loaded=False)
