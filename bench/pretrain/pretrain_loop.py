"""The MoCo v2 pretraining loop: images without labels in, a pretrained backbone's weights out."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from bench.data.batches import Normalizer, batch_indices
from bench.pretrain.backbone import split_classifier
from bench.pretrain.moco_augment import MocoAugment, two_views
from bench.pretrain.mocov2 import Moco, MocoEncoder, queue_size_for
from bench.train.loop import autocast_dtype_for
from zoo.entry import ZooEntry
from zoo.pretraining import MocoRecipe


@dataclass
class PretrainResult:
    backbone_state: dict[str, torch.Tensor]  # the query encoder's backbone, on the CPU
    feature_dim: int
    head_name: str  # the classifier head the backbone lacks
    queue_size: int
    batch_size: int
    history: list[dict] = field(default_factory=list)  # one row per epoch
    seconds: float = 0.0
    data_seconds: float = 0.0  # slicing, copying, augmenting and normalising batches

    @property
    def final_loss(self) -> float:
        return self.history[-1]["loss"]


def build_moco(entry: ZooEntry, moco: MocoRecipe, n_images: int) -> tuple[Moco, int, str]:
    """The MoCo model for `entry`'s architecture, seeded by the recipe; also (feature dim, head name)."""
    torch.manual_seed(moco.seed)
    # No dropout: it would only add noise to the features the contrastive loss compares.
    model = entry.build(input_size=moco.input_size or entry.input_size, dropout=0.0)
    backbone, feature_dim, head_name = split_classifier(model)
    encoder = MocoEncoder(backbone, feature_dim, moco.projection_dim)
    queue_size = queue_size_for(n_images, moco.batch_size, moco.queue_size)
    return Moco(encoder, queue_size, moco.projection_dim, moco.encoder_momentum, moco.temperature), feature_dim, head_name


def pretrain_moco(entry: ZooEntry, moco: MocoRecipe, images: torch.Tensor, device: torch.device, *,
                  augment: MocoAugment = MocoAugment(), progress: bool = True, label: str = "",
                  on_epoch: Callable[[list[dict]], None] | None = None) -> PretrainResult:
    """Pretrain on uint8 (N, C, H, W) images (no labels); views are made at the recipe's input size."""
    # --- setup: model, queue, optimiser, precision ------------------------------------------
    n = len(images)
    model, feature_dim, head_name = build_moco(entry, moco, n)
    generator = torch.Generator().manual_seed(moco.seed)  # shuffling and augmentation draws
    channels_last = device.type == "cuda"
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    normalize = Normalizer(entry.mean, entry.std, device)
    size = moco.input_size or entry.input_size
    batch_size = min(moco.batch_size, n)
    steps_per_epoch = n // batch_size
    optimizer = torch.optim.SGD(model.query.parameters(), lr=moco.lr, momentum=moco.momentum,
                                weight_decay=moco.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=moco.epochs)  # per epoch, as MoCo v2
    amp_dtype = autocast_dtype_for(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    result = PretrainResult({}, feature_dim, head_name, len(model.queue), batch_size)
    started = time.perf_counter()

    for epoch in range(1, moco.epochs + 1):
        # --- one epoch: two views per image, InfoNCE against the queue, momentum update ------
        model.train()
        epoch_start, data_seconds = time.perf_counter(), 0.0
        loss_sum, hits, seen = 0.0, 0, 0
        batches = batch_indices(n, batch_size, shuffle=True, generator=generator, drop_last=True)
        bar = tqdm(batches, total=steps_per_epoch, desc=f"{label} MoCo epoch {epoch}/{moco.epochs}",
                   disable=not progress, leave=False, unit="batch")
        for idx in bar:
            data_start = time.perf_counter()
            x = images[idx].to(device, non_blocking=True).float().div_(255.0)
            views = [normalize(v) for v in two_views(x, size, augment, generator)]
            if channels_last:
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            data_seconds += time.perf_counter() - data_start
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss, logits = model(views[0], views[1], idx)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.item() * len(idx)
            hits += (logits.argmax(1) == 0).sum().item()  # the positive key ranked first
            seen += len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()

        # --- bookkeeping: a diverged run must stop, not be stored -----------------------------
        row = {"epoch": epoch, "loss": loss_sum / seen, "instance_acc": hits / seen, "lr": lr,
               "seconds": time.perf_counter() - epoch_start, "data_seconds": data_seconds}
        if not math.isfinite(row["loss"]):
            raise FloatingPointError(f"{label} MoCo loss is {row['loss']} at epoch {epoch}; try a lower lr")
        result.history.append(row)
        result.data_seconds += data_seconds
        if progress:
            tqdm.write(f"{label} MoCo epoch {epoch}/{moco.epochs}: loss {row['loss']:.3f}, "
                       f"instance acc {row['instance_acc']:.3f} | {row['seconds']:.1f}s ({data_seconds:.1f}s data)")
        if on_epoch is not None:
            on_epoch(result.history)

    result.seconds = time.perf_counter() - started
    result.backbone_state = {k: v.detach().cpu().clone() for k, v in model.query.backbone.state_dict().items()}
    return result
