"""'Training' for reference models that learn nothing by gradient (knn.pixels): one fit pass.

Such a model exposes `fit_batches(iterable of (images, labels))`. It is fitted on the same
training split the learned entries train on (after the validation carve-out), so the
comparison is fair, and scored on validation like any other entry.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from bench.data.batches import Normalizer, batch_indices, to_model_input
from bench.data.cache import DecodedSplit
from bench.train.loop import TrainResult, evaluate_split

FIT_BATCH = 256


def is_reference_model(model: nn.Module) -> bool:
    return callable(getattr(model, "fit_batches", None))


def fit_reference(model: nn.Module, train: DecodedSplit, val: DecodedSplit, normalize: Normalizer) -> TrainResult:
    started = time.perf_counter()
    model.to(normalize.mean.device)
    with torch.no_grad():  # not inference_mode: the fitted buffers must stay ordinary tensors
        model.fit_batches((to_model_input(train.images[idx], normalize), train.labels[idx].to(normalize.mean.device))
                          for idx in batch_indices(len(train), FIT_BATCH, shuffle=False))
    scores = evaluate_split(model, val, normalize, nn.CrossEntropyLoss(), channels_last=False, autocast_dtype=None)
    seconds = time.perf_counter() - started
    history = [{"epoch": 0, "train_loss": float("nan"), "train_acc": float("nan"), "val_loss": scores["loss"],
                "val_acc": scores["acc"], "lr": 0.0, "seconds": seconds, "data_seconds": 0.0}]
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return TrainResult(best_state=state, best_epoch=0, best_val=scores, epochs_run=0, history=history,
                       seconds=seconds)
