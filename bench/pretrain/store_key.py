"""Where a pretrained backbone lives in the checkpoint store, keyed like any checkpoint.

    <store>/<arch>.mocov2-backbone/<MoCo recipe hash>-<context hash>-<dataset fingerprint>/

The MoCo recipe alone does not decide the weights: which images it saw does too. Pretraining uses
only the training part of Training (the validation images are held out, or validation would no
longer be honest), so the split's fraction and seed are part of the key, with the input size,
channels, normalisation and decoding. Every entry of the same architecture whose fine-tuning
recipe has the same split reuses one backbone.
"""

from __future__ import annotations

import hashlib
import json

from bench.data.dataset import LoadedDataset
from bench.train.store import CheckpointKey
from zoo.entry import ZooEntry
from zoo.recipe import Recipe


def backbone_entry_name(entry: ZooEntry) -> str:
    return f"{entry.arch}.mocov2-backbone"


def backbone_context(entry: ZooEntry, recipe: Recipe, data: LoadedDataset) -> dict:
    """Everything besides the MoCo recipe and the dataset fingerprint that the backbone depends on."""
    moco = entry.pretraining
    return {
        "split": {"val_fraction": recipe.val_fraction, "seed": recipe.seed},
        "input_size": moco.input_size or entry.input_size,
        "in_channels": entry.in_channels,
        "mean": list(entry.mean),
        "std": list(entry.std),
        "preprocessing": dict(data.decoded.preprocessing.__dict__),
    }


def backbone_key(entry: ZooEntry, recipe: Recipe, data: LoadedDataset) -> CheckpointKey:
    if entry.pretraining is None:
        raise ValueError(f"entry {entry.name} has no pretraining recipe")
    context = json.dumps(backbone_context(entry, recipe, data), sort_keys=True)
    context_hash = hashlib.sha256(context.encode()).hexdigest()[:8]
    return CheckpointKey(backbone_entry_name(entry), f"{entry.pretraining.hash()}-{context_hash}", data.fingerprint)
