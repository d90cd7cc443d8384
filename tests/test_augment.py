"""Tests for bench.data.augment: batched, seeded, device-preserving augmentation."""

from __future__ import annotations

import pytest
import torch

from bench.data.augment import AugmentPolicy, augment_batch, policy_named

# Every op switched off; tests switch on exactly the one they are about.
OFF = dict(flip=False, max_rotation_deg=0.0, max_translate=0.0, brightness=0.0, contrast=0.0)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_batch(n: int = 8, c: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=seeded(seed))


def blob(n: int = 4, height: int = 33, width: int = 33, radius: float = 6.0) -> torch.Tensor:
    """A bright disc centred in a black image, like a centred head on MRI background."""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    cy, cx = (height - 1) / 2, (width - 1) / 2
    disc = (((yy - cy) ** 2 + (xx - cx) ** 2) <= radius**2).float()
    return disc.expand(n, 1, height, width).clone()


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    """(N, 2) x and y centre of mass in pixels."""
    n, _, h, w = images.shape
    mass = images.sum(dim=1)
    total = mass.sum(dim=(1, 2))
    xs = (mass * torch.arange(w).view(1, 1, w)).sum(dim=(1, 2)) / total
    ys = (mass * torch.arange(h).view(1, h, 1)).sum(dim=(1, 2)) / total
    return torch.stack([xs, ys], dim=1)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("extras", [{}, {"random_resized_crop": True}])
def test_basic_preserves_shape_dtype_device_and_range(channels, extras):
    images = random_batch(c=channels)
    out = augment_batch(images, policy_named("basic", **extras), seeded())
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    assert out.device == images.device
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, images)


def test_none_is_identity():
    images = random_batch(c=3)
    out = augment_batch(images, policy_named("none"), seeded())
    assert torch.equal(out, images)


def test_flip_only_gives_input_or_exact_mirror_and_both_occur():
    images = random_batch(n=64)
    out = augment_batch(images, AugmentPolicy(**{**OFF, "flip": True}), seeded())
    mirrored = images.flip(-1)
    same = [torch.allclose(o, i, atol=1e-5) for o, i in zip(out, images)]
    flipped = [torch.allclose(o, m, atol=1e-5) for o, m in zip(out, mirrored)]
    assert all(s or f for s, f in zip(same, flipped))
    assert any(same) and any(flipped)


@pytest.mark.parametrize("height, width", [(33, 33), (33, 65)])
def test_rotation_only_keeps_centre_and_mass(height, width):
    images = blob(n=8, height=height, width=width, radius=10.0)
    out = augment_batch(images, AugmentPolicy(**{**OFF, "max_rotation_deg": 30.0}), seeded())
    assert torch.all(out[:, 0, height // 2, width // 2] > 0.99)
    mass_in, mass_out = images.sum(dim=(1, 2, 3)), out.sum(dim=(1, 2, 3))
    assert torch.allclose(mass_out, mass_in, rtol=0.05)
    # A rotated disc is the same disc up to edge blur (about 8 % of its mass here). A rotation done
    # in normalized rather than pixel space shears it on the non-square image (up to 40 %).
    changed = (out - images).abs().sum(dim=(1, 2, 3)) / mass_in
    assert torch.all(changed < 0.15)
    assert not torch.allclose(out, images)  # it did rotate: a disc's pixel edge is not round


def test_translation_only_moves_centre_of_mass_within_bound():
    images = blob(n=32)
    max_translate = 0.1
    out = augment_batch(images, AugmentPolicy(**{**OFF, "max_translate": max_translate}), seeded())
    moved = (centre_of_mass(out) - centre_of_mass(images)).abs()
    assert moved.max() <= max_translate * images.shape[-1] + 1
    assert moved.max() > 1  # it did move


def test_contrast_only_keeps_constant_image_constant():
    levels = torch.linspace(0.1, 0.9, 8).view(8, 1, 1, 1)
    images = levels.expand(8, 3, 16, 16).clone()
    out = augment_batch(images, AugmentPolicy(**{**OFF, "contrast": 0.5}), seeded())
    assert torch.allclose(out, images, atol=1e-6)


def test_contrast_only_changes_spread_within_bounds():
    images = random_batch(n=16) * 0.5 + 0.25  # room to stretch without clamping
    out = augment_batch(images, AugmentPolicy(**{**OFF, "contrast": 0.2}), seeded())
    ratio = out.std(dim=(1, 2, 3)) / images.std(dim=(1, 2, 3))
    assert torch.all(ratio >= 0.8 - 1e-4) and torch.all(ratio <= 1.2 + 1e-4)
    assert ratio.std() > 0.01  # per-image factors, not one shared factor


def test_brightness_only_scales_mean_within_bounds():
    images = torch.full((32, 1, 16, 16), 0.5)
    out = augment_batch(images, AugmentPolicy(**{**OFF, "brightness": 0.3}), seeded())
    factor = out.mean(dim=(1, 2, 3)) / 0.5
    assert torch.all(factor >= 0.7 - 1e-5) and torch.all(factor <= 1.3 + 1e-5)
    assert factor.std() > 0.05
    per_image_spread = out.amax(dim=(1, 2, 3)) - out.amin(dim=(1, 2, 3))
    assert torch.all(per_image_spread == 0)


@pytest.mark.parametrize("extras", [{}, {"random_resized_crop": True}, {"autoaugment": True}])
def test_same_seed_same_output_different_seed_different_output(extras):
    images = random_batch(n=4, c=3)
    policy = policy_named("basic", **extras)
    # The global RNG differs between the two calls: only the generator may decide the result.
    torch.manual_seed(10)
    first = augment_batch(images, policy, seeded(1))
    torch.manual_seed(20)
    again = augment_batch(images, policy, seeded(1))
    other = augment_batch(images, policy, seeded(2))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_autoaugment_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    augment_batch(random_batch(n=2), policy_named("none", autoaugment=True), seeded())
    assert torch.equal(torch.rand(3), expected)


def test_random_resized_crop_changes_image_and_stays_in_range():
    images = random_batch(n=8, c=3)
    out = augment_batch(images, AugmentPolicy(**{**OFF, "random_resized_crop": True}), seeded())
    assert out.shape == images.shape
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, images, atol=1e-3)


def test_random_resized_crop_zooms_in():
    # Any crop of at least 60 % of the area, kept inside the image, contains the central third,
    # so a small centred disc is never cut and can only grow, by 1 / scale on average.
    images = blob(n=32, height=64, width=64, radius=4.0)
    out = augment_batch(images, AugmentPolicy(**{**OFF, "random_resized_crop": True}), seeded())
    growth = out.sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    assert torch.all(growth > 0.95) and torch.all(growth < 1 / 0.6 + 0.1)
    assert growth.mean() > 1.1


@pytest.mark.parametrize("channels", [1, 3])
def test_autoaugment_runs_for_one_and_three_channels(channels):
    images = random_batch(n=16, c=channels)
    out = augment_batch(images, policy_named("none", autoaugment=True), seeded())
    assert out.shape == images.shape and out.dtype == images.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, images)


def test_policy_named_rejects_unknown_name():
    with pytest.raises(ValueError, match="heavy") as excinfo:
        policy_named("heavy")
    assert "basic" in str(excinfo.value) and "none" in str(excinfo.value)


@pytest.mark.parametrize("bad", [{"brightness": 1.5}, {"max_translate": -0.1}, {"max_rotation_deg": -1.0}])
def test_policy_rejects_out_of_range_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        AugmentPolicy(**bad)


def test_rejects_non_float_batch():
    with pytest.raises(ValueError, match="uint8"):
        augment_batch(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), policy_named("basic"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_batch_with_cpu_generator_matches_cpu(dtype):
    images = random_batch(n=8, c=3)
    policy = policy_named("basic", random_resized_crop=True)
    on_cpu = augment_batch(images, policy, seeded(3))
    on_gpu = augment_batch(images.to("cuda", dtype), policy, seeded(3))
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == dtype
    # Same random draws, so the same augmentation up to float rounding at resampled edges.
    assert (on_gpu.float().cpu() - on_cpu).abs().mean() < 1e-2
