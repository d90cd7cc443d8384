"""Duplicate groups: images linked by "is a copy of" (same bytes, or similarity >= threshold in
any orientation), closed under transitivity, as connected components of that graph.

A leak-free split must keep each group on one side: if a test image's group holds a training
image, the test image is memory, not generalization, even when its own nearest training image
falls just under the threshold (a chain of neighbouring slices).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from bench.audit.match import MAX_SIMILARITIES, ORIENTATIONS, oriented, pooled, standardize


@torch.no_grad()
def _similar_pairs(pixels: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j for every pair at or above the threshold, best orientation."""
    refs = standardize(pooled(pixels))
    images = pooled(pixels)
    n = len(pixels)
    rows = max(1, MAX_SIMILARITIES // (len(ORIENTATIONS) * n))
    first, second = [], []
    for start in range(0, n, rows):
        sims = (oriented(images[start:start + rows]) @ refs.T).amax(dim=0)  # (chunk, n)
        i, j = torch.nonzero(sims >= threshold, as_tuple=True)
        i = i + start
        keep = i < j  # each unordered pair once, never an image with itself
        first.append(i[keep].numpy())
        second.append(j[keep].numpy())
    return np.concatenate(first), np.concatenate(second)


def _same_bytes_pairs(sha256: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each byte-identical file linked to the first file with its hash (a blank picture has no
    usable similarity, but a copy is a copy)."""
    first_seen: dict[str, int] = {}
    pairs = [(first_seen.setdefault(digest, i), i) for i, digest in enumerate(sha256)]
    kept = np.array([(a, b) for a, b in pairs if a != b], dtype=np.int64).reshape(-1, 2)
    return kept[:, 0], kept[:, 1]


def linked_pairs(pixels: np.ndarray, sha256: list[str], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of pictures that are copies: similarity >= threshold (any orientation) or same bytes."""
    a1, b1 = _similar_pairs(pixels, threshold)
    a2, b2 = _same_bytes_pairs(sha256)
    return np.concatenate([a1, a2]), np.concatenate([b1, b2])


def duplicate_groups(pixels: np.ndarray, sha256: list[str], threshold: float) -> np.ndarray:
    """(N,) group id per picture; pictures with no duplicate are groups of one."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"similarity threshold must be in (0, 1], got {threshold}")
    n = len(pixels)
    if n == 0:
        return np.zeros(0, np.int64)
    a, b = linked_pairs(pixels, sha256, threshold)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)
