"""Everything an interrupted training needs to go on exactly where it stopped, as one dict of tensors.

Captured after every epoch and written by the store next to the unfinished checkpoint: weights,
optimizer, scheduler, gradient scaler, every random number generator the loop draws from (the
seeded shuffling/augmentation generator, torch's global CPU RNG for dropout, the CUDA RNG), and
the loop's own progress (epoch, best state so far, history). Restoring all of it makes the
resumed run bit-identical to an uninterrupted one on the CPU.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from bench.errors import CheckpointError
from bench.train.store import CheckpointKey, CheckpointStore

RESUME_FORMAT = 1

log = logging.getLogger("brainbench")


def capture(*, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler | None, scaler: torch.amp.GradScaler,
            generator: torch.Generator, device: torch.device, progress: dict) -> dict:
    """The state after `epoch` finished. `progress` holds the loop's bookkeeping (best state, history)."""
    rng = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return {
        "format": RESUME_FORMAT,
        "epoch": epoch,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "rng": rng,
        "progress": progress,
    }


def fits(state: dict, model: nn.Module) -> bool:
    """Whether a resume state has our format and the model's weight names and shapes (checked
    before loading, since a failed strict load may already have copied some tensors)."""
    theirs, ours = state.get("model"), model.state_dict()
    return (state.get("format") == RESUME_FORMAT and isinstance(theirs, dict) and theirs.keys() == ours.keys()
            and all(theirs[k].shape == ours[k].shape for k in ours))


def restore(state: dict, *, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LRScheduler | None, scaler: torch.amp.GradScaler,
            generator: torch.Generator, device: torch.device) -> tuple[int, dict]:
    """Load a captured state into freshly built training objects; the finished epoch and the progress."""
    if state.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"resume state has format {state.get('format')!r}, expected {RESUME_FORMAT}")
    if (state["scheduler"] is None) != (scheduler is None):
        raise CheckpointError("resume state and recipe disagree about having a learning-rate scheduler")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if state["scaler"]:  # empty when saved by a disabled (non-fp16) scaler; a new one starts fresh
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"]["torch"])
    generator.set_state(state["rng"]["generator"])
    if device.type == "cuda" and "cuda" in state["rng"]:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    return int(state["epoch"]), state["progress"]


def saved_state(store: CheckpointStore, key: CheckpointKey, model: nn.Module) -> dict | None:
    """The resume state of `key`'s unfinished checkpoint if it can be used for `model`; None (after
    saying why) if it is unreadable or does not fit, and training starts from the first epoch."""
    try:
        state = store.load_resume(key)
    except CheckpointError as error:
        log.warning("%s; training from the first epoch", error)
        return None
    if state is None:
        return None
    if not fits(state, model):
        log.warning("resume state in %s does not fit %s; training from the first epoch", store.folder(key), key.entry)
        return None
    log.info("%s: resuming an interrupted training after epoch %d (state in %s)",
             key.entry, state["epoch"], store.folder(key))
    return state
