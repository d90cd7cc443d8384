"""One readable training loop: epochs over the uint8 cache, validation, best checkpoint, early stop.

The test split never enters this file: epochs and the kept checkpoint are chosen on validation.

Speed: the whole uint8 training split moves to the device once (about 1 GB at 224 px on a GPU;
a no-op on the CPU), and every batch is sliced, augmented and normalized there in batch, with no
per-image Python work and no DataLoader. Losses and accuracies accumulate on the device, so a
step waits for the host only when the progress bar is refreshed. Under torchrun each process
takes its slice of every global batch (bench.train.distributed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from bench.data.augment import policy_named
from bench.data.batches import Normalizer, batch_indices, to_model_input
from bench.data.cache import DecodedSplit
from bench.errors import TrainingDivergedError
from bench.evaluate.predict import predict_logits
from bench.train import distributed, resume
from bench.train.optim import make_optimizer, make_scheduler
from bench.train.step import train_step
from zoo.recipe import Recipe

POSTFIX_EVERY = 25  # batches between progress-bar refreshes and divergence checks (each one waits for the device)


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_val: dict  # {"acc": ..., "loss": ...} at best_epoch
    epochs_run: int
    history: list[dict] = field(default_factory=list)  # one row per epoch
    seconds: float = 0.0
    data_seconds: float = 0.0  # slicing, copying, augmenting and normalizing batches
    resumed_from_epoch: int | None = None  # the epoch an interrupted run was resumed after


def autocast_dtype_for(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU supports it, else fp16 (with a gradient scaler); full precision on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _is_better(val: dict, best: dict | None) -> bool:
    """Higher validation accuracy wins; a tie goes to the lower validation loss."""
    return best is None or (val["acc"], -val["loss"]) > (best["acc"], -best["loss"])


def _stop_if_diverged(batch_losses: torch.Tensor, *, label: str, epoch: int, lr: float) -> None:
    """TrainingDivergedError once any rank's training loss so far in this epoch is nan or inf.

    Every rank calls this at the same batches and agrees on the first bad one (a collective), so
    all stop together; it runs before the epoch's resume state is written, so the last resume state
    and the store stay as they were before the divergence.
    """
    if not len(batch_losses):
        return
    bad = ~torch.isfinite(batch_losses)
    first = torch.where(bad.any(), bad.int().argmax(), len(batch_losses)).double().reshape(1)
    first = int(distributed.all_reduce_min(first).item())
    if first == len(batch_losses):
        return
    value = batch_losses[first].item()
    became = f"{value}" if not math.isfinite(value) else "nan or inf"  # another rank's loss went first
    raise TrainingDivergedError(f"{label or 'training'}: training loss became {became} at epoch {epoch}, "
                                f"batch {first + 1} (lr {lr:g}); no checkpoint written; try a lower --lr")


def _stop_if_validation_diverged(scores: dict, *, label: str, epoch: int, lr: float) -> None:
    if not math.isfinite(scores["loss"]):
        raise TrainingDivergedError(f"{label or 'training'}: validation loss became {scores['loss']} at epoch "
                                    f"{epoch}: the weights are no longer finite (lr {lr:g}); no checkpoint "
                                    f"written; try a lower --lr")


def _patience_exhausted(epoch: int, best_epoch: int, patience: int | None) -> bool:
    return patience is not None and epoch - best_epoch >= patience


def evaluate_split(model: nn.Module, split: DecodedSplit, normalize: Normalizer, criterion: nn.Module,
                   channels_last: bool, autocast_dtype: torch.dtype | None) -> dict:
    """Loss and accuracy on a split; under torchrun each rank scores every N-th image and the sums
    are reduced, so every rank gets the same numbers."""
    ranks = distributed.current()
    if not ranks.active:
        logits = predict_logits(model, split.images, normalize, channels_last=channels_last,
                                autocast_dtype=autocast_dtype)
        labels = split.labels
        return {"loss": criterion(logits, labels).item(), "acc": (logits.argmax(1) == labels).float().mean().item()}
    images, labels = split.images[ranks.rank::ranks.world_size], split.labels[ranks.rank::ranks.world_size]
    sums = torch.zeros(3, dtype=torch.float64, device=normalize.mean.device)  # loss * n, correct, n
    if len(labels):
        logits = predict_logits(model, images, normalize, channels_last=channels_last, autocast_dtype=autocast_dtype)
        sums += torch.tensor([criterion(logits, labels).item() * len(labels),
                              (logits.argmax(1) == labels).sum().item(), len(labels)], dtype=torch.float64,
                             device=sums.device)
    loss_sum, correct, seen = distributed.all_reduce_sum(sums).tolist()
    return {"loss": loss_sum / seen, "acc": correct / seen}


def train_model(model: nn.Module, train: DecodedSplit, val: DecodedSplit, recipe: Recipe, normalize: Normalizer, *,
                on_epoch: Callable[[list[dict]], None] | None = None, progress: bool = True,
                label: str = "", compile_step: bool = False, resume_from: dict | None = None,
                save_state: Callable[[dict], None] | None = None,
                amp_dtype: torch.dtype | None | str = "auto") -> TrainResult:
    """Train `model` in place and load its best-validation weights into it.

    `resume_from` is a state captured by `save_state` after an earlier epoch (bench.train.resume);
    training goes on after that epoch exactly as if it had never stopped. `save_state` is called
    after every epoch, before `on_epoch`, so a run interrupted from `on_epoch` can resume.
    """
    # --- setup: seeds, device placement, precision, processes ---------------------------------
    device = normalize.mean.device
    ranks = distributed.current()
    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)  # shuffling and augmentation draws, same on every rank
    channels_last = device.type == "cuda"
    model = distributed.prepare_model(model, device, ranks)
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    # "auto": the device's choice (bf16 where supported, else fp16); the GPU self-check forces fp16
    # to exercise the gradient scaler on a GPU that would pick bf16.
    amp_dtype = autocast_dtype_for(device) if amp_dtype == "auto" else amp_dtype
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)  # only fp16 needs loss scaling
    policy = policy_named(recipe.augment, random_resized_crop=recipe.random_resized_crop,
                          autoaugment=recipe.autoaugment)
    batch_size = min(recipe.batch_size, len(train))  # the global batch, over all processes
    local = distributed.local_batch_size(batch_size, ranks)
    mine = slice(ranks.rank * local, (ranks.rank + 1) * local)  # this rank's part of every global batch
    steps_per_epoch = len(train) // batch_size
    optimizer = make_optimizer(model, recipe)
    scheduler, step_per_batch = make_scheduler(optimizer, recipe, steps_per_epoch)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    plain_loss = nn.CrossEntropyLoss()  # validation loss is comparable across recipes
    # The data lives on the device for the whole run: one copy here instead of one per batch.
    images, labels = train.images.to(device), train.labels.to(device)
    val = DecodedSplit(val.images.to(device), val.labels, val.paths)
    step_model = distributed.wrap(model, device, ranks)
    if compile_step:
        step_model = torch.compile(step_model)  # forward and backward; the optimizer step stays eager

    result = TrainResult(best_state={}, best_epoch=0, best_val={}, epochs_run=0)
    best_val: dict | None = None
    start_epoch, previous_seconds = 1, 0.0
    if resume_from is not None:
        done, saved = resume.restore(resume_from, model=model, optimizer=optimizer, scheduler=scheduler,
                                     scaler=scaler, generator=generator, device=device)
        result = TrainResult(**saved["result"])
        best_val = dict(result.best_val) or None
        result.resumed_from_epoch, start_epoch, previous_seconds = done, done + 1, result.seconds
        if _patience_exhausted(done, result.best_epoch, recipe.patience):
            start_epoch = recipe.epochs + 1  # it had already stopped early
    started = time.perf_counter()
    for epoch in range(start_epoch, recipe.epochs + 1):
        # --- one epoch over shuffled batches; dropping the ragged last batch keeps BatchNorm sane
        model.train()
        epoch_start, data_seconds = time.perf_counter(), 0.0
        order = torch.stack(list(batch_indices(len(train), batch_size, shuffle=True, generator=generator,
                                               drop_last=True))).to(device)
        sums, seen = torch.zeros(2, dtype=torch.float64, device=device), 0  # loss * n and correct, on the device
        batch_losses = torch.zeros(steps_per_epoch, device=device)  # this rank's, kept to name a diverged batch
        bar = tqdm(order, total=steps_per_epoch, desc=f"{label} epoch {epoch}/{recipe.epochs}",
                   disable=not progress, leave=False, unit="batch")
        for step, idx in enumerate(bar):
            data_start = time.perf_counter()
            idx = idx[mine]
            x = to_model_input(images[idx], normalize, policy=policy, generator=generator,
                               channels_last=channels_last, shard=(mine.start, batch_size))
            y = labels[idx]
            data_seconds += time.perf_counter() - data_start
            logits, loss = train_step(step_model, x, y, criterion, optimizer, scaler, amp_dtype)
            if step_per_batch:
                scheduler.step()
            sums += torch.stack([loss.detach().double() * len(y), (logits.argmax(1) == y).sum().double()])
            batch_losses[step] = loss.detach()
            seen += len(y)
            if step % POSTFIX_EVERY == 0:
                _stop_if_diverged(batch_losses[:step + 1], label=label, epoch=epoch, lr=recipe.lr)
                if progress:
                    loss_sum, correct = sums.tolist()
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None and not step_per_batch:
            scheduler.step()
        totals = torch.cat([sums, torch.tensor([seen], dtype=torch.float64, device=device)])
        loss_sum, correct, seen = distributed.all_reduce_sum(totals).tolist()  # over all ranks' images
        _stop_if_diverged(batch_losses, label=label, epoch=epoch, lr=recipe.lr)

        # --- validation decides which epoch is kept ------------------------------------------
        distributed.sync_buffers(model)
        scores = evaluate_split(model, val, normalize, plain_loss, channels_last, amp_dtype)
        _stop_if_validation_diverged(scores, label=label, epoch=epoch, lr=recipe.lr)
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
        result.epochs_run = epoch
        result.best_val = dict(best_val)
        result.seconds = previous_seconds + time.perf_counter() - started

        # --- the resumable state first, so that an interruption from on_epoch loses nothing ---
        if save_state is not None:
            save_state(resume.capture(epoch=epoch, model=model, optimizer=optimizer, scheduler=scheduler,
                                      scaler=scaler, generator=generator, device=device,
                                      progress={"result": _resumable(result)}))
        if on_epoch is not None:
            on_epoch(result.history)

        # --- early stopping: patience counts epochs without a new best -----------------------
        if _patience_exhausted(epoch, result.best_epoch, recipe.patience):
            if progress:
                tqdm.write(f"{label} early stop: no better validation accuracy for {recipe.patience} epochs")
            break

    result.best_val = dict(best_val or {})
    result.seconds = previous_seconds + time.perf_counter() - started
    model.load_state_dict(result.best_state)
    return result


def _resumable(result: TrainResult) -> dict:
    """TrainResult's fields as plain data (weights_only loading accepts nothing else)."""
    return {name: getattr(result, name) for name in TrainResult.__dataclass_fields__}
