"""knn.pixels: a raw-pixel nearest-neighbour classifier, the floor every learned model must beat.

Nothing is learned. `fit` stores the training images as small vectors; a test image takes the
label of the most similar one. Its score measures how much of a benchmark number comes from
test images that repeat training images (the public dataset has many identical and mirrored
copies across its splits), so a learned model is only interesting by what it adds on top.

Each image becomes one vector: adaptive average pool to `side` x `side` (all channels),
flatten, subtract the vector's mean, divide by its L2 norm. The dot product of two vectors is
then their Pearson correlation, so a brightness or contrast change (a*x + b, a > 0) of a
training image still matches it exactly. Pooling also absorbs JPEG noise and small resizes.

Scores: for each class, the best cosine similarity among that class's training vectors, divided
by `temperature`. The argmax of per-class best similarity is the class of the single nearest
neighbour, so the accuracy is exactly the 1-NN accuracy, while softmax over these logits gives
probabilities that say how much closer the winning class is than the runner-up.

With `mirror` (on by default) an image is also compared in its left-right mirrored form and the
better of the two similarities counts, because the dataset holds mirrored copies.

The vectors and labels are registered buffers, so the ordinary state_dict / safetensors
checkpoint holds the fitted model. They are float32: 5,708 x 1,024 floats is 23 MB, float32
matrix multiplies are the fast path on CPU, and half precision (about 3 significant digits)
could blur an exact copy (similarity 1.0) with a merely close image of another class.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

# Cosine similarities live in [-1, 1]; dividing by this turns them into logits. Chosen on a
# validation split carved from Training (never on Testing) by minimum negative log-likelihood;
# a similarity gap of 0.02 then means a factor e between two classes' probabilities.
DEFAULT_TEMPERATURE = 0.02

# Upper bound on (query rows x training rows) similarities held at once, about 256 MB of
# float32; larger training sets are scanned in chunks with a running per-class maximum.
MAX_SIMILARITIES = 64 * 1024 * 1024


class KnnPixels(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, side: int = 32, *, mirror: bool = True,
                 temperature: float = DEFAULT_TEMPERATURE):
        super().__init__()
        if num_classes < 1 or in_channels < 1 or side < 1:
            raise ValueError(f"knn.pixels needs positive num_classes, in_channels and side, got "
                             f"{num_classes}, {in_channels}, {side}")
        if temperature <= 0:
            raise ValueError(f"knn.pixels temperature must be positive, got {temperature}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.side = side
        self.mirror = mirror
        self.temperature = temperature
        # Zero rows until fitted; _load_from_state_dict resizes them to a checkpoint's row count.
        self.register_buffer("train_vectors", torch.zeros(0, self.dim))
        self.register_buffer("train_labels", torch.zeros(0, dtype=torch.long))

    @property
    def dim(self) -> int:
        return self.in_channels * self.side * self.side

    @property
    def fitted(self) -> bool:
        return self.train_vectors.shape[0] > 0

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, in_channels={self.in_channels}, side={self.side}, "
                f"mirror={self.mirror}, temperature={self.temperature}, train_rows={self.train_vectors.shape[0]}")

    # --- vectors -----------------------------------------------------------------------------

    def _pooled(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"knn.pixels expects (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}")
        return F.adaptive_avg_pool2d(x.float(), self.side)

    @staticmethod
    def _standardize(pooled: torch.Tensor) -> torch.Tensor:
        """Flatten, zero mean, unit L2 norm. A constant image becomes the zero vector (no match)."""
        v = pooled.reshape(pooled.shape[0], -1)
        v = v - v.mean(dim=1, keepdim=True)
        return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) normalized images -> (N, C*side*side) standardized float32 vectors."""
        with torch.autocast(x.device.type, enabled=False):
            return self._standardize(self._pooled(x))

    # --- fitting -----------------------------------------------------------------------------

    @torch.no_grad()
    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> KnnPixels:
        """Store the training split: (N, C, H, W) images normalized as for forward, (N,) labels."""
        return self.fit_batches([(images, labels)])

    @torch.no_grad()
    def fit_batches(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> KnnPixels:
        """`fit` over (images, labels) batches, so the full float split never has to exist at once.

        Replaces whatever was stored before. Vectors end up on the device the buffers are on.
        """
        device = self.train_vectors.device
        vectors, targets = [], []
        for images, labels in batches:
            labels = torch.as_tensor(labels).reshape(-1)
            if len(labels) != len(images):
                raise ValueError(f"knn.pixels.fit: {len(images)} images but {len(labels)} labels")
            vectors.append(self.embed(images).to(device))
            targets.append(labels.to(device=device, dtype=torch.long))
        if not vectors or sum(len(t) for t in targets) == 0:
            raise ValueError("knn.pixels.fit: no training images given")
        labels = torch.cat(targets)
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"knn.pixels.fit: labels must be in [0, {self.num_classes}), "
                             f"got {labels.min().item()}..{labels.max().item()}")
        # Assigning to a registered buffer name replaces the buffer, so state_dict sees the new rows.
        self.train_vectors = torch.cat(vectors)
        self.train_labels = labels
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # The row count is the number of training images, unknown when the model is built: take the
        # checkpoint's. Only rows adapt; a different vector width (side, channels) still fails the
        # ordinary shape check, as it should.
        vectors = state_dict.get(prefix + "train_vectors")
        labels = state_dict.get(prefix + "train_labels")
        if vectors is not None and vectors.dim() == 2 and vectors.shape[1] == self.dim:
            self.train_vectors = self.train_vectors.new_empty(vectors.shape)
        if labels is not None and labels.dim() == 1:
            self.train_labels = self.train_labels.new_empty(labels.shape)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    # --- scoring -----------------------------------------------------------------------------

    def best_similarity(self, x: torch.Tensor) -> torch.Tensor:
        """(N, num_classes): per class, the highest cosine similarity to that class's training images.

        A class with no training images scores -1, the lowest similarity there is.
        """
        if not self.fitted:
            raise RuntimeError("knn.pixels has not been fitted: call fit(images, labels) on the training split, "
                               "or load a fitted state dict, before forward")
        if self.train_vectors.shape[0] != self.train_labels.shape[0]:
            raise RuntimeError(f"knn.pixels is inconsistent: {self.train_vectors.shape[0]} training vectors but "
                               f"{self.train_labels.shape[0]} labels")
        # Full precision even under an outer autocast: bf16 could not tell 1.0 from 0.996.
        with torch.autocast(x.device.type, enabled=False):
            pooled = self._pooled(x)
            n = pooled.shape[0]
            if self.mirror:  # mirroring the pooled image equals pooling the mirrored one
                pooled = torch.cat([pooled, pooled.flip(-1)])
            queries = self._standardize(pooled)
            best = queries.new_full((n, self.num_classes), -1.0)
            rows = max(1, MAX_SIMILARITIES // max(1, queries.shape[0]))
            for start in range(0, self.train_vectors.shape[0], rows):
                sims = queries @ self.train_vectors[start:start + rows].T  # (n or 2n, rows)
                if self.mirror:
                    sims = torch.maximum(sims[:n], sims[n:])
                index = self.train_labels[start:start + rows].expand(n, -1)
                best = best.scatter_reduce(1, index, sims, reduce="amax", include_self=True)
            return best

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.best_similarity(x) / self.temperature


def build_knn_pixels(*, num_classes: int, in_channels: int, input_size: int, dropout: float | None = None,
                     side: int = 32) -> KnnPixels:
    """The zoo builder. `input_size` only bounds `side` (pooling adapts to any size); `dropout`
    is accepted for the builder contract and ignored: there is nothing to regularize."""
    if side > input_size:
        raise ValueError(f"knn.pixels: side {side} is larger than the input size {input_size}")
    return KnnPixels(num_classes, in_channels, side)
