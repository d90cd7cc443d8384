"""One readable training loop: epochs over the uint8 cache, validation, best checkpoint, early stop.

The test split never enters this file: epochs and the kept checkpoint are chosen on validation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from bench.data.augment import policy_named
from bench.data.batches import Normalizer, batch_indices, to_model_input
from bench.data.cache import DecodedSplit
from bench.evaluate.predict import predict_logits
from bench.train.optim import make_optimizer, make_scheduler
from zoo.recipe import Recipe


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val: dict  # {"acc": ..., "loss": ...} at best_epoch
    epochs_run: int
    history: list[dict] = field(default_factory=list)  # one row per epoch
    seconds: float = 0.0
    data_seconds: float = 0.0  # slicing, copying, augmenting and normalizing batches


def autocast_dtype_for(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16 (with a gradient scaler); full precision on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _is_better(val: dict, best: dict | None) -> bool:
    """Higher validation accuracy wins; a tie goes to the lower validation loss."""
    return best is None or (val["acc"], -val["loss"]) > (best["acc"], -best["loss"])


def evaluate_split(model: nn.Module, split: DecodedSplit, normalize: Normalizer, criterion: nn.Module,
                   channels_last: bool, autocast_dtype: torch.dtype | None) -> dict:
    logits = predict_logits(model, split.images, normalize, channels_last=channels_last, autocast_dtype=autocast_dtype)
    labels = split.labels
    return {"loss": criterion(logits, labels).item(), "acc": (logits.argmax(1) == labels).float().mean().item()}


def train_model(model: nn.Module, train: DecodedSplit, val: DecodedSplit, recipe: Recipe, normalize: Normalizer, *,
                on_epoch: Callable[[list[dict]], None] | None = None, progress: bool = True,
                label: str = "") -> TrainResult:
    # --- setup: seeds, device placement, precision -------------------------------------------
    device = normalize.mean.device
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)  # shuffling and augmentation draws
    channels_last = device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    amp_dtype = autocast_dtype_for(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    policy = policy_named(recipe.augment, random_resized_crop=recipe.random_resized_crop,
                          autoaugment=recipe.autoaugment)
    batch_size = min(recipe.batch_size, len(train))
    steps_per_epoch = len(train) // batch_size
    optimizer = make_optimizer(model, recipe)
    scheduler, step_per_batch = make_scheduler(optimizer, recipe, steps_per_epoch)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    plain_loss = nn.CrossEntropyLoss()  # validation loss is comparable across recipes

    result = TrainResult(best_state={}, best_epoch=0, best_val={}, epochs_run=0)
    best_val: dict | None = None
    started = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        # --- one epoch over shuffled batches; dropping the ragged last batch keeps BatchNorm sane
        model.train()
        epoch_start, data_seconds = time.perf_counter(), 0.0
        loss_sum, correct, seen = 0.0, 0, 0
        batches = batch_indices(len(train), batch_size, shuffle=True, generator=generator, drop_last=True)
        bar = tqdm(batches, total=steps_per_epoch, desc=f"{label} epoch {epoch}/{recipe.epochs}",
                   disable=not progress, leave=False, unit="batch")
        for idx in bar:
            data_start = time.perf_counter()
            x = to_model_input(train.images[idx], normalize, policy=policy, generator=generator,
                               channels_last=channels_last)
            y = train.labels[idx].to(device, non_blocking=True)
            data_seconds += time.perf_counter() - data_start
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(x)
                loss = criterion(logits, y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if step_per_batch:
                scheduler.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None and not step_per_batch:
            scheduler.step()

        # --- validation decides which epoch is kept ------------------------------------------
        scores = evaluate_split(model, val, normalize, plain_loss, channels_last, amp_dtype)
        row = {"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": correct / seen,
               "val_loss": scores["loss"], "val_acc": scores["acc"], "lr": lr,
               "seconds": time.perf_counter() - epoch_start, "data_seconds": data_seconds}
        result.history.append(row)
        result.data_seconds += data_seconds
        if progress:
            tqdm.write(f"{label} epoch {epoch}/{recipe.epochs}: train loss {row['train_loss']:.3f} "
                       f"acc {row['train_acc']:.3f} | val loss {scores['loss']:.3f} acc {scores['acc']:.3f} "
                       f"| {row['seconds']:.1f}s ({data_seconds:.1f}s data)")
        if _is_better(scores, best_val):
            best_val = scores
            result.best_epoch = epoch
            result.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None:
            on_epoch(result.history)
        result.epochs_run = epoch

        # --- early stopping: patience counts epochs without a new best -----------------------
        if recipe.patience is not None and epoch - result.best_epoch >= recipe.patience:
            if progress:
                tqdm.write(f"{label} early stop: no better validation accuracy for {recipe.patience} epochs")
            break

    result.best_val = dict(best_val or {})
    result.seconds = time.perf_counter() - started
    model.load_state_dict(result.best_state)
    return result
