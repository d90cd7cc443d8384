"""Train a U-Net on one protocol fold, or load it from the checkpoint store.

Loss: binary cross-entropy on the mask logits plus soft Dice (1 - 2|P.T| / (|P| + |T|), on the
sigmoid probabilities of each batch). Cross-entropy alone is swamped by the background (a tumour
is a few % of a slice) and learns to predict nothing; Dice alone gives flat gradients early on.
Their sum is the usual choice for small-foreground segmentation and what brainbench uses; the
source study does not state its loss.

Each epoch ends with validation Dice (mean over slices, threshold 0.5) on slices carved from the
training side with patients whole; the best epoch's weights are stored. The full training state
is saved after every epoch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from bench.data.dataset import SplitView
from bench.data.protocols import validation_split
from bench.environment import environment
from bench.identity import InputContract, ResultIdentity, data_key
from bench.segmentation.data import MaskedSlices
from bench.segmentation.metrics import dice_iou
from bench.train.store import CheckpointStore
from zoo.entry import ZooEntry
from zoo.recipe import Recipe

MASK_CLASSES = ("tumor",)  # what a segmenter's one output channel means: part of its input contract
THRESHOLD = 0.5  # probability at which a pixel is called tumour


@dataclass(frozen=True)
class FoldData:
    """One protocol fold of a masked dataset: positions into `slices` for each part."""

    slices: MaskedSlices
    fingerprint: str
    view: SplitView
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @classmethod
    def of(cls, slices: MaskedSlices, fingerprint: str, view: SplitView, val_fraction: float, seed: int) -> FoldData:
        train = np.asarray(view.fold.train, np.int64)
        groups = None if view.groups is None else [view.groups[slices.rels[i]] for i in train]
        kept, held = validation_split(slices.labels[train].tolist(), groups, val_fraction, seed)
        return cls(slices, fingerprint, view, train[np.asarray(kept, np.int64)], train[np.asarray(held, np.int64)],
                   np.asarray(view.fold.test, np.int64))

    # data_key reads these (bench.identity.DataLike)
    clean_split = None

    @property
    def split(self) -> SplitView:
        return self.view


@dataclass
class TrainedSegmenter:
    model: nn.Module
    manifest: dict
    loaded: bool


def segmentation_identity(entry: ZooEntry, recipe: Recipe, data: FoldData, measured: str = "") -> ResultIdentity:
    size = recipe.input_size or entry.input_size
    contract = InputContract(size, entry.in_channels, tuple(entry.mean), tuple(entry.std), MASK_CLASSES)
    return ResultIdentity(entry.name, contract, recipe.hash(), data_key(data), measured)


def dice_bce_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    bce = F.binary_cross_entropy_with_logits(logits, masks)
    probs = torch.sigmoid(logits)
    overlap = (probs * masks).sum(dim=(1, 2, 3))
    soft_dice = (2 * overlap + 1.0) / (probs.sum(dim=(1, 2, 3)) + masks.sum(dim=(1, 2, 3)) + 1.0)
    return bce + (1.0 - soft_dice).mean()


def to_input(images: np.ndarray, entry: ZooEntry, device: torch.device) -> torch.Tensor:
    """(N, S, S) uint8 -> (N, 1, S, S) normalized floats on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device=device, dtype=torch.float32)[:, None] / 255.0
    return (x - entry.mean[0]) / entry.std[0]


def _flip_both(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal and vertical flips, the same for a slice and its mask."""
    for dim in (-1, -2):
        flip = torch.rand(len(x), generator=generator) < 0.5
        if flip.any():
            x[flip], y[flip] = x[flip].flip(dim), y[flip].flip(dim)
    return x, y


@torch.no_grad()
def predict_probabilities(model: nn.Module, images: np.ndarray, entry: ZooEntry, device: torch.device,
                          batch_size: int = 32) -> np.ndarray:
    """(N, S, S) float32 tumour probabilities."""
    model.eval()
    out = [torch.sigmoid(model(to_input(images[i:i + batch_size], entry, device)))[:, 0].float().cpu().numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, *images.shape[1:]), np.float32)


def _validation_dice(model: nn.Module, data: FoldData, entry: ZooEntry, device: torch.device) -> float:
    probs = predict_probabilities(model, data.slices.images[data.val], entry, device)
    dice, _ = dice_iou(probs >= THRESHOLD, data.slices.masks[data.val])
    return float(dice.mean())


def _schedule(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    if recipe.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, recipe.epochs * steps_per_epoch))
    if recipe.scheduler == "none":
        return None
    raise ValueError(f"segmentation training supports the cosine and none schedulers, not {recipe.scheduler!r}")


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def train_or_load_segmenter(entry: ZooEntry, recipe: Recipe, data: FoldData, store: CheckpointStore,
                            device: torch.device, *, fresh: bool = False, progress: bool = True) -> TrainedSegmenter:
    identity = segmentation_identity(entry, recipe, data)
    key = identity.checkpoint_key()
    model = entry.build(input_size=recipe.input_size, num_classes=1, pretrained=False)
    if store.exists(key) and not fresh:
        state, manifest = store.load(key)
        model.load_state_dict(state)
        return TrainedSegmenter(model.to(device), manifest, loaded=True)
    torch.manual_seed(recipe.seed)  # the initial weights belong to the recipe too
    model = entry.build(input_size=recipe.input_size, num_classes=1, pretrained=False).to(device)
    with store.training(key):
        if fresh:
            store.clear_resume(key)
        saved = None if fresh else store.load_resume(key)
        result = _train(model, entry, recipe, data, store, key, device, progress, saved)
        best_state = result.pop("best_state")
        manifest = {
            "task": "segmentation", "recipe": recipe.as_dict(), "input_size": identity.contract.size,
            "in_channels": identity.contract.channels, "input_contract": identity.contract.record(),
            "identity": identity.record(), "loss": "binary cross-entropy + soft Dice",
            "val_split": {"fraction": recipe.val_fraction, "seed": recipe.seed, "n_train": len(data.train),
                          "n_val": len(data.val), "groups_kept_whole": data.view.groups is not None},
            **result, "environment": environment(device),
        }
        manifest = store.save(key, best_state, manifest)
    return TrainedSegmenter(model, manifest, loaded=False)


def _train(model: nn.Module, entry: ZooEntry, recipe: Recipe, data: FoldData, store: CheckpointStore, key,
           device: torch.device, progress: bool, saved: dict | None) -> dict:
    optimizer = _optimizer(model, recipe)
    steps = math.ceil(len(data.train) / recipe.batch_size)
    scheduler = _schedule(optimizer, recipe, steps)
    history, best_val, best_epoch, best_state, start = [], -1.0, 0, None, 1
    if saved is not None:  # an interrupted training of this very key: continue after its last epoch
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler"):
            scheduler.load_state_dict(saved["scheduler"])
        history, best_val, best_epoch = list(saved["history"]), float(saved["best_val"]), int(saved["best_epoch"])
        best_state, start = saved["best_state"], int(saved["epoch"]) + 1
    generator = torch.Generator().manual_seed(recipe.seed)
    started = time.perf_counter()
    for epoch in range(start, recipe.epochs + 1):
        generator.manual_seed(recipe.seed * 1000 + epoch)  # a resumed epoch draws what it would have
        order = data.train[torch.randperm(len(data.train), generator=generator).numpy()]
        model.train()
        losses = []
        bar = tqdm(range(steps), desc=f"{entry.name} epoch {epoch}/{recipe.epochs}", unit="batch",
                   disable=not progress, leave=False)
        for step in bar:
            batch = order[step * recipe.batch_size:(step + 1) * recipe.batch_size]
            x = to_input(data.slices.images[batch], entry, device)
            y = torch.from_numpy(data.slices.masks[batch]).to(device=device, dtype=torch.float32)[:, None]
            if recipe.augment != "none":
                x, y = _flip_both(x, y, generator)
            loss = dice_bce_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}")
        val_dice = _validation_dice(model, data, entry, device)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_dice": val_dice})
        if val_dice > best_val:
            best_val, best_epoch = val_dice, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        store.write_history(key, history)
        store.save_resume(key, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict() if scheduler is not None else {},
                                "history": history, "best_val": best_val, "best_epoch": best_epoch,
                                "best_state": best_state, "epoch": epoch})
        if progress:
            tqdm.write(f"{entry.name} epoch {epoch}/{recipe.epochs}: loss {history[-1]['train_loss']:.4f}, "
                       f"val Dice {val_dice:.4f}")
        if recipe.patience is not None and epoch - best_epoch >= recipe.patience:
            break
    model.load_state_dict(best_state)
    return {"epochs_run": len(history), "best_epoch": best_epoch, "best_val": {"dice": best_val},
            "train_seconds": round(time.perf_counter() - started, 2),
            "resumed_after_epoch": start - 1 if saved else None,
            "history": history, "best_state": best_state}
