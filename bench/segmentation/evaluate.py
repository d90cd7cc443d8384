"""One trained segmenter on its fold's test slices: metrics, per-slice counts, pictures, efficiency, modes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.deploy.modes import MODE_GROUPS
from bench.evaluate.efficiency import efficiency_row
from bench.io import write_text_atomically
from bench.segmentation.metrics import metrics_from_counts, pixel_counts
from bench.segmentation.modes import THROUGHPUT_BATCH, segmentation_deployment_row
from bench.segmentation.pictures import attention_sheet, slice_sheet
from bench.segmentation.train import THRESHOLD, FoldData, predict_probabilities, to_input
from zoo.entry import ZooEntry

COUNTS_FILE = "test_counts.csv"  # per test slice: path, class, tp, fp, fn, tn, dice (pooled over folds later)
SHEET_FILE = "slices.png"
ATTENTION_FILE = "attention.png"
ATTENTION_SLICES = 4
CHECK_SLICES = 32  # test slices each deployment mode is compared with eager on


def evaluate_segmenter(model: nn.Module, entry: ZooEntry, data: FoldData, class_names: tuple[str, ...],
                       device: torch.device, entry_dir: Path, *, measure: tuple[str, ...],
                       modes: tuple[str, ...], weights: Path | None = None) -> dict:
    """The row's measured columns; writes test_counts.csv and the pictures into `entry_dir`.
    `weights`: the stored checkpoint file, whose size is the model's size."""
    slices = data.slices
    images, truth = slices.images[data.test], slices.masks[data.test]
    classes = [class_names[label] for label in slices.labels[data.test]]
    pred = predict_probabilities(model, images, entry, device) >= THRESHOLD
    counts = pixel_counts(pred, truth)
    row = {f"test_{k}": v for k, v in metrics_from_counts(counts, classes=classes, class_names=class_names).items()
           if k != "dice_per_image"}
    dice = _write_counts(entry_dir / COUNTS_FILE, [slices.rels[i] for i in data.test], classes, counts)
    slice_sheet(images, truth, pred, dice, entry_dir / SHEET_FILE, title=f"{entry.name}: test slices by Dice",
                captions=[f"{Path(slices.rels[i]).name} ({c})" for i, c in zip(data.test, classes)])
    row["pictures"] = [SHEET_FILE]
    if _draws_attention(model):
        row["pictures"].append(_attention(model, entry, images, dice, device, entry_dir / ATTENTION_FILE))
    if "efficiency" in measure:
        size = images.shape[-1]
        row |= efficiency_row(model, (1, entry.in_channels, size, size), device, checkpoint_path=weights,
                              throughput_batch=THROUGHPUT_BATCH)
        if len(modes) > 1 or device.type == "cuda":
            check = to_input(images[:CHECK_SLICES], entry, device)
            expanded = tuple(m for mode in modes for m in MODE_GROUPS[mode])
            row |= segmentation_deployment_row(model, size, device, check, expanded, entry.name)
    return row


def _write_counts(path: Path, rels: list[str], classes: list[str], counts: np.ndarray) -> list[float]:
    tp, fp, fn = counts[:, 0], counts[:, 1], counts[:, 2]
    denominator = 2 * tp + fp + fn
    dice = np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 1.0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "class", "tp", "fp", "fn", "tn", "dice"])
    writer.writerows([rel, c, *map(int, k), f"{d:.6f}"] for rel, c, k, d in zip(rels, classes, counts, dice))
    write_text_atomically(path, buffer.getvalue())
    return dice.tolist()


def read_counts(path: Path) -> tuple[list[str], np.ndarray]:
    """The classes and (N, 4) counts a fold wrote, for pooling folds."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["class"] for r in rows], np.array([[int(r[k]) for k in ("tp", "fp", "fn", "tn")] for r in rows],
                                                dtype=np.int64).reshape(-1, 4)


def _draws_attention(model: nn.Module) -> bool:
    return hasattr(model, "last_attention") and any("Gate" in type(m).__name__ for m in model.modules())


@torch.no_grad()
def _attention(model: nn.Module, entry: ZooEntry, images: np.ndarray, dice: list[float], device: torch.device,
               path: Path) -> str:
    """The attention coefficients of the best-segmented test slices, drawn over them."""
    chosen = np.argsort(dice)[::-1][:ATTENTION_SLICES]
    model.eval()
    model(to_input(images[chosen], entry, device))
    maps = [gate[:, 0].float().cpu().numpy() for gate in model.last_attention]
    attention_sheet(images[chosen], maps, path, title=f"{entry.name}: attention coefficients per gate")
    return path.name
