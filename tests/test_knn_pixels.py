"""knn.pixels: exact self-matches, invariance to brightness/contrast and mirroring, checkpoints, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from zoo.architectures.knn_pixels import KnnPixels, build_knn_pixels

SIZE = 16  # tiny images; pooled to SIDE x SIDE
SIDE = 8


def random_images(n: int, channels: int = 1, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def fitted(n: int = 12, *, mirror: bool = True, channels: int = 1) -> tuple[KnnPixels, torch.Tensor, torch.Tensor]:
    images = random_images(n, channels)
    labels = torch.arange(n) % 4
    model = build_knn_pixels(num_classes=4, in_channels=channels, input_size=SIZE, side=SIDE)
    model.mirror = mirror
    return model.fit(images, labels), images, labels


def test_every_training_image_is_its_own_nearest_neighbour():
    model, images, labels = fitted(channels=3)
    sims = model.best_similarity(images)
    assert torch.equal(sims.argmax(1), labels)
    assert torch.allclose(sims.max(1).values, torch.ones(len(images)), atol=1e-5)  # distance 0
    assert torch.equal(model(images).argmax(1), labels)


def test_brightness_and_contrast_changes_do_not_matter():
    model, images, labels = fitted()
    changed = 2.5 * images + 0.7
    assert torch.equal(model(changed).argmax(1), labels)
    assert torch.allclose(model.best_similarity(changed).max(1).values, torch.ones(len(images)), atol=1e-5)


def test_mirrored_copy_matches_only_with_mirror_on():
    # Asymmetric images: each has a bright block on a different row of its left half only.
    images = torch.zeros(4, 1, SIZE, SIZE)
    for k in range(4):
        images[k, 0, 4 * k:4 * k + 4, :SIZE // 2] = 1.0
    # Training holds only the mirrored copy of image 0 (as class 2) and image 1 (as class 1).
    model = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE)
    model.fit(torch.cat([images[:1].flip(-1), images[1:2]]), torch.tensor([2, 1]))
    query = images[:1]  # the original orientation, never seen
    assert model.mirror  # on by default
    assert model(query).argmax(1).item() == 2
    assert model.best_similarity(query)[0, 2].item() == pytest.approx(1.0, abs=1e-5)
    model.mirror = False
    assert model.best_similarity(query)[0, 2].item() < 0.5  # no longer an exact match


def test_scores_are_sensible_probabilities():
    model, images, labels = fitted()
    probs = torch.softmax(model(images + 0.05 * random_images(len(images), seed=1)), dim=1)
    assert torch.all(probs.argmax(1) == labels)
    assert torch.all(probs.max(1).values > 0.5)
    assert torch.isfinite(model(images)).all()


def test_class_without_training_images_scores_lowest():
    model = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE)
    model.fit(random_images(6), torch.tensor([0, 0, 1, 1, 2, 2]))
    sims = model.best_similarity(random_images(3, seed=5))
    assert torch.all(sims[:, 3] == -1.0) and torch.all(sims[:, :3] > -1.0)


def test_unfitted_forward_raises_clearly():
    model = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE)
    with pytest.raises(RuntimeError, match="knn.pixels has not been fitted"):
        model(random_images(2))


def test_fit_rejects_bad_input():
    model = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE)
    with pytest.raises(ValueError, match="labels must be in"):
        model.fit(random_images(2), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        model.fit(random_images(2), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"expects \(N, 1, H, W\)"):
        model.fit(random_images(2, channels=3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="larger than the input size"):
        build_knn_pixels(num_classes=4, in_channels=1, input_size=16, side=32)


def test_fit_batches_equals_fit():
    images, labels = random_images(10), torch.arange(10) % 4
    whole = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE).fit(images, labels)
    parts = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE)
    parts.fit_batches([(images[:3], labels[:3]), (images[3:], labels[3:])])
    assert torch.equal(whole.train_vectors, parts.train_vectors)
    assert torch.equal(whole.train_labels, parts.train_labels)


def test_safetensors_round_trip_into_a_fresh_model(tmp_path):
    model, images, _ = fitted(n=9)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    fresh = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE)
    assert fresh.train_vectors.shape[0] == 0  # rows unknown at build time
    fresh.load_state_dict(load_file(str(path)), strict=True)
    queries = random_images(5, seed=3)
    assert torch.equal(fresh(queries), model(queries))
    assert fresh.train_vectors.shape == (9, SIDE * SIDE)


def test_state_dict_of_another_width_is_refused():
    model, _, _ = fitted()
    wider = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE * 2)
    with pytest.raises(RuntimeError, match="size mismatch"):
        wider.load_state_dict(model.state_dict())


def test_no_parameters_and_macs_do_not_crash():
    from bench.evaluate.efficiency import count_gmacs, count_params

    model, _, _ = fitted()
    assert count_params(model) == 0
    assert sum(p.numel() for p in model.parameters()) == 0
    gmacs, note = count_gmacs(model, (1, 1, SIZE, SIZE))
    assert gmacs is None or gmacs >= 0, note


def test_agrees_with_brute_force_numpy_1nn():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 1, SIZE, SIZE)).astype(np.float32)
    test = rng.normal(size=(25, 1, SIZE, SIZE)).astype(np.float32)
    labels = rng.integers(0, 4, 60)

    def vectors(x: np.ndarray) -> np.ndarray:  # 2x2 average pool, standardize
        v = x.reshape(len(x), SIDE, 2, SIDE, 2).mean(axis=(2, 4)).reshape(len(x), -1)
        v = v - v.mean(axis=1, keepdims=True)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    a, b = vectors(test), vectors(train)
    nearest = np.argmin(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), axis=1)  # Euclidean on unit vectors
    model = build_knn_pixels(num_classes=4, in_channels=1, input_size=SIZE, side=SIDE)
    model.mirror = False
    model.fit(torch.from_numpy(train), torch.from_numpy(labels))
    assert np.array_equal(model(torch.from_numpy(test)).argmax(1).numpy(), labels[nearest])


def test_full_dataset_scale_is_fast_on_cpu():
    # The public split: 1,311 test images against 5,708 training images, 32 x 32 vectors, mirror on.
    model = build_knn_pixels(num_classes=4, in_channels=1, input_size=64)
    train = torch.randn(5708, 1024)
    model.train_vectors = train / train.norm(dim=1, keepdim=True)
    model.train_labels = torch.arange(5708) % 4
    queries = torch.randn(1311, 1, 64, 64)
    with torch.inference_mode():
        model(queries[:8])  # warm-up
        start = time.perf_counter()
        logits = model(queries)
        seconds = time.perf_counter() - start
    assert logits.shape == (1311, 4)
    assert seconds < 2.0, f"{seconds:.2f}s"
