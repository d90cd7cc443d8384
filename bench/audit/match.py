"""Nearest neighbour by standardized cosine similarity, over four orientations, as matrix multiplies.

Each picture is average-pooled to COMPARE_SIDE, flattened, and standardized (zero mean, unit L2
norm), so the dot product of two pictures is their Pearson correlation: a brightness or
contrast change (a*x + b, a > 0) leaves it at 1, and pooling absorbs JPEG noise and resizing.
This is the same vector zoo's knn.pixels uses; here it serves an audit, not a classifier.

A query is compared in four orientations (identity, left-right mirror, up-down mirror, both);
flipping the pooled picture equals pooling the flipped one, so the reference vectors are built once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

COMPARE_SIDE = 32  # 1,024 numbers per picture: 4x cheaper than 64 px and still telling slices apart
ORIENTATIONS = ("identity", "h-flip", "v-flip", "h+v-flip")
# Upper bound on similarities held at once (float32: 256 MB); queries are processed in chunks.
MAX_SIMILARITIES = 64 * 1024 * 1024


@dataclass
class Nearest:
    similarity: np.ndarray  # (Nq,) float32, best similarity; -1 where there was nothing to compare
    index: np.ndarray  # (Nq,) int64 index into the references; -1 where none
    orientation: np.ndarray  # (Nq,) int64 index into ORIENTATIONS (the query's orientation)


def pooled(pixels: np.ndarray) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, COMPARE_SIDE, COMPARE_SIDE) float32."""
    x = torch.from_numpy(np.ascontiguousarray(pixels)).float()[:, None]
    return F.adaptive_avg_pool2d(x, COMPARE_SIDE)[:, 0]


def standardize(images: torch.Tensor) -> torch.Tensor:
    """Flatten, zero mean, unit norm. A constant picture becomes the zero vector: it matches nothing."""
    v = images.reshape(images.shape[0], -1)
    v = v - v.mean(dim=1, keepdim=True)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def oriented(images: torch.Tensor) -> torch.Tensor:
    """(N, S, S) -> (4, N, S*S) standardized vectors, in ORIENTATIONS order."""
    views = (images, images.flip(-1), images.flip(-2), images.flip(-1, -2))
    return torch.stack([standardize(v) for v in views])


@torch.no_grad()
def nearest(queries: np.ndarray, references: np.ndarray, *, same_set: bool = False,
            query_labels: np.ndarray | None = None, reference_labels: np.ndarray | None = None) -> Nearest:
    """For every query picture, the most similar reference over the four orientations.

    `same_set`: queries and references are the same pictures; an image is never its own neighbour.
    With both label arrays, only references of a label other than the query's count: the nearest
    image that would make a label conflict, even where a same-label copy is nearer.
    """
    n_q, n_r = len(queries), len(references)
    best = np.full(n_q, -1.0, np.float32)
    index = np.full(n_q, -1, np.int64)
    orient = np.zeros(n_q, np.int64)
    if n_q == 0 or n_r == 0 or (same_set and n_r < 2):
        return Nearest(best, index, orient)
    refs = standardize(pooled(references))  # (Nr, D)
    query_images = pooled(queries)
    by_label = query_labels is not None and reference_labels is not None
    if by_label:
        q_labels, r_labels = torch.from_numpy(query_labels), torch.from_numpy(reference_labels)
    rows = max(1, MAX_SIMILARITIES // (len(ORIENTATIONS) * n_r))
    for start in range(0, n_q, rows):
        q = oriented(query_images[start:start + rows])  # (4, c, D)
        sims = q @ refs.T  # (4, c, Nr)
        if same_set:
            c = q.shape[1]
            own = torch.arange(c)
            sims[:, own, own + start] = -2.0  # below any real cosine
        if by_label:
            same = q_labels[start:start + rows, None] == r_labels[None, :]
            sims.masked_fill_(same[None], -2.0)
        per_ref, per_ref_orient = sims.max(dim=0)  # (c, Nr)
        value, idx = per_ref.max(dim=1)  # (c,)
        stop = start + len(value)
        best[start:stop] = value.numpy()
        index[start:stop] = np.where(value.numpy() > -2.0, idx.numpy(), -1)  # -1: nothing eligible
        orient[start:stop] = per_ref_orient.gather(1, idx[:, None])[:, 0].numpy()
    return Nearest(best, index, orient)
