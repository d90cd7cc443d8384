"""MoCo v2 (He et al. 2020; Chen et al. 2020): a query encoder trained by InfoNCE against a
momentum-updated key encoder and a queue of earlier keys as negatives.

Shuffling BN: the MoCo paper shuffles the key batch across GPUs so that a query and its positive
key are not normalised with statistics of the same per-GPU sub-batch, a leak the model can learn
to exploit. We train on one device, where each encoder's BatchNorm sees its whole batch at once
and a permutation of that batch changes no statistic: shuffling would do nothing, so we skip it.
Should the leak ever show, its symptom is `instance_acc` in history.csv racing towards 1 while
the linear probe stays poor.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from bench.pretrain.backbone import UnsupportedBackboneError


def queue_size_for(n_images: int, batch_size: int, requested: int | None = None) -> int:
    """The number of negatives kept: `requested`, or sized to the dataset.

    MoCo's 65,536 keys are 5 % of ImageNet; our training split has about 4,900 images. A queue
    longer than the dataset would hold several keys of the same image, so every query would meet
    its own image among its negatives, and the oldest keys would come from ever staler encoders.
    The largest multiple of the batch not above N keeps as many negatives as the data allows
    (more negatives help, per the MoCo ablation) while each image appears about once; being a
    multiple of the batch, the ring buffer is refilled by whole batches. The one own-image key
    that can remain (the previous epoch's) is masked out of the logits, see `Moco.forward`.
    """
    batch_size = min(batch_size, n_images)
    size = requested if requested is not None else n_images - n_images % batch_size
    if size < batch_size:
        raise ValueError(f"MoCo queue ({size}) must hold at least one batch ({batch_size})")
    return size


def info_nce_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float,
                    exclude: torch.Tensor | None = None) -> torch.Tensor:
    """(N, 1 + K) logits [q.k+, q.queue] / T for L2-normalised q, k (N, D) and queue (K, D).

    `exclude` (N, K) marks negatives that are not negatives (the query's own image); they get -inf.
    """
    positive = (q * k).sum(dim=1, keepdim=True)
    negative = q @ queue.T
    if exclude is not None:
        negative = negative.masked_fill(exclude, float("-inf"))
    return torch.cat([positive, negative], dim=1) / temperature


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float,
             exclude: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE: cross-entropy with the positive key at index 0."""
    logits = info_nce_logits(q, k, queue, temperature, exclude)
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


class MocoEncoder(nn.Module):
    """Backbone (N, D) features -> MLP projection (D -> D -> ReLU -> projection_dim), as in MoCo v2."""

    def __init__(self, backbone: nn.Module, feature_dim: int, projection_dim: int):
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.projection = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(inplace=True),
                                        nn.Linear(feature_dim, projection_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise UnsupportedBackboneError(
                f"backbone returned features of shape {tuple(features.shape)}, expected (N, {self.feature_dim})")
        return self.projection(features)


class Moco(nn.Module):
    def __init__(self, query: MocoEncoder, queue_size: int, projection_dim: int, encoder_momentum: float,
                 temperature: float):
        super().__init__()
        self.query = query
        self.key = copy.deepcopy(query)  # starts as an exact copy; moves only by the momentum rule
        self.key.requires_grad_(False)
        self.encoder_momentum = encoder_momentum
        self.temperature = temperature
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, projection_dim), dim=1))
        self.register_buffer("queue_ids", torch.full((queue_size,), -1, dtype=torch.long))  # image of each key
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))  # next slot to overwrite

    @torch.no_grad()
    def momentum_update(self) -> None:
        """key = m * key + (1 - m) * query, parameter by parameter; buffers (BN statistics) stay the key's own."""
        keys, queries = list(self.key.parameters()), list(self.query.parameters())
        torch._foreach_mul_(keys, self.encoder_momentum)
        torch._foreach_add_(keys, queries, alpha=1.0 - self.encoder_momentum)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, ids: torch.Tensor) -> None:
        """Ring buffer: the batch overwrites the oldest keys, wrapping around the end."""
        slots = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % len(self.queue)
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_ids[slots] = ids.to(self.queue_ids.device)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % len(self.queue))

    def forward(self, x_q: torch.Tensor, x_k: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits) for two views of the images with dataset positions `ids`; enqueues their keys."""
        q = F.normalize(self.query(x_q).float(), dim=1)  # the loss in fp32 whatever autocast does
        with torch.no_grad():
            self.momentum_update()
            k = F.normalize(self.key(x_k).float(), dim=1)
        # A clone: autograd keeps the queue for q's gradient, and enqueue overwrites it before backward.
        queue, queue_ids = self.queue.clone(), self.queue_ids.clone()
        exclude = queue_ids.view(1, -1) == ids.to(queue_ids.device).view(-1, 1)
        with torch.autocast(q.device.type, enabled=False):  # autocast would run the matmul in 16 bits
            logits = info_nce_logits(q, k, queue, self.temperature, exclude)
            loss = F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))
        self.enqueue(k, ids)
        return loss, logits
