"""One optimisation step on one batch, shared by the training loop and the throughput benchmark.

Keep the signature stable: `bench.train.loop` and `bench.throughput` both call it.
"""

from __future__ import annotations

import torch
from torch import nn


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, criterion: nn.Module,
               optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Autocast forward and loss, then zero_grad, scaled backward, optimizer step, scaler update.

    `amp_dtype` None runs in full precision; the scaler is a no-op unless it was built enabled
    (fp16). Returns the logits and the loss, both still on the device (no host sync here).
    """
    device_type = x.device.type
    with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
        loss = criterion(logits, y)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return logits, loss
