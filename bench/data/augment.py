"""Batched training augmentation on float images in [0, 1], on whatever device the batch lives.

Training slices batches out of a uint8 cache, so augmentation must be cheap per batch: every
geometric op (flip, rotation, translation, random resized crop) is folded into ONE 2x3 affine
matrix per image and applied with a single `grid_sample`; brightness and contrast are per-image
factors broadcast over the batch. The only per-image Python loop is the optional AutoAugment.

Randomness: every random number comes from the caller's `torch.Generator`, drawn on the
generator's own device (CPU for the usual seeded generator) and then moved to the batch's device,
because a CPU generator cannot sample CUDA tensors. A seeded CPU generator therefore draws the
same parameters whether the batch is on CPU or GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

# Random resized crop ranges, as in torchvision's RandomResizedCrop but with a milder minimum
# scale: an MRI slice cropped to 8 % of its area may no longer show the tumor.
CROP_SCALE = (0.6, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)

# Columns of the per-image table of uniform [0, 1) numbers drawn once per batch. One fixed-size
# draw means a policy's parameters do not depend on which other ops happen to be switched on.
_U_FLIP, _U_ANGLE, _U_TX, _U_TY, _U_BRIGHT, _U_CONTRAST, _U_SCALE, _U_RATIO, _U_CX, _U_CY = range(10)
_N_UNIFORMS = 10


@dataclass(frozen=True)
class AugmentPolicy:
    flip: bool = True  # horizontal flip, p=0.5 per image
    max_rotation_deg: float = 10.0  # uniform in [-max, max] per image
    max_translate: float = 0.05  # fraction of width/height, uniform per image
    brightness: float = 0.1  # multiply by a factor in [1-b, 1+b] per image
    contrast: float = 0.1  # scale deviation from the per-image mean by [1-c, 1+c]
    random_resized_crop: bool = False  # area scale in [0.6, 1], aspect in [3/4, 4/3], random position
    autoaugment: bool = False  # torchvision AutoAugment, ImageNet policy; per-image loop

    def __post_init__(self) -> None:
        if self.max_rotation_deg < 0:
            raise ValueError(f"max_rotation_deg must be >= 0, got {self.max_rotation_deg}")
        if not 0 <= self.max_translate < 1:
            raise ValueError(f"max_translate must be in [0, 1), got {self.max_translate}")
        # Factors above 1 would allow a negative multiplier, i.e. an inverted image.
        for name in ("brightness", "contrast"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")

    @property
    def has_geometry(self) -> bool:
        return self.flip or self.max_rotation_deg > 0 or self.max_translate > 0 or self.random_resized_crop

    @property
    def is_identity(self) -> bool:
        return not (self.has_geometry or self.brightness or self.contrast or self.autoaugment)


_NAMED = {
    "none": AugmentPolicy(flip=False, max_rotation_deg=0.0, max_translate=0.0, brightness=0.0, contrast=0.0),
    "basic": AugmentPolicy(),
}


def policy_named(name: str, *, random_resized_crop: bool = False, autoaugment: bool = False) -> AugmentPolicy:
    """The named base policy, with the two heavier options switched on if asked."""
    if name not in _NAMED:
        raise ValueError(f"unknown augmentation policy {name!r}; valid names: {', '.join(sorted(_NAMED))}")
    return replace(_NAMED[name], random_resized_crop=random_resized_crop, autoaugment=autoaugment)


def augment_batch(
    images: torch.Tensor, policy: AugmentPolicy, generator: torch.Generator | None = None, *,
    shard: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Augment a float (N, C, H, W) batch in [0, 1]; same shape, dtype and device, clamped to [0, 1].

    An identity policy returns `images` itself, untouched. `shard=(start, total)` says that these
    N images are rows start..start+N of a batch of `total` split across processes: the random
    table is drawn for all `total` rows and sliced, so every image gets the augmentation it
    would get in one process and the generator advances the same on every rank.
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
    if policy.is_identity:
        return images
    n = images.shape[0]
    start, total = shard if shard is not None else (0, n)
    if not (0 <= start and start + n <= total):
        raise ValueError(f"shard {shard} does not hold a batch of {n} images")
    draw_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(total, _N_UNIFORMS, generator=generator, device=draw_device)[start:start + n]
    if u.device.type == "cpu" and images.device.type == "cuda":
        # A copy from pageable memory would wait for the GPU to finish the previous step; from
        # pinned memory it queues behind it, so the host runs ahead and the GPU never idles.
        u = u.pin_memory().to(images.device, non_blocking=True)
    u = u.to(images.device, torch.float32)

    out = images
    if policy.has_geometry:
        theta = _affine_matrices(u, policy, images.shape[-2], images.shape[-1])
        grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
        # Zero padding is black, which is the MRI background, so rotated corners look natural.
        out = F.grid_sample(out, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if policy.autoaugment:
        seed = int(torch.randint(2**62, (1,), generator=generator, device=draw_device))
        # Per-image draws inside AutoAugment cannot be sliced; offsetting the seed by the shard's
        # start keeps ranks decorrelated (and one process unchanged), though not equal to it.
        out = _autoaugment(out, seed + start)
    out = _photometric(out, u, policy)
    return out.clamp(0.0, 1.0)


def _symmetric(u: torch.Tensor, limit: float) -> torch.Tensor:
    """Map uniform [0, 1) to uniform [-limit, limit)."""
    return (2 * u - 1) * limit


def _affine_matrices(u: torch.Tensor, policy: AugmentPolicy, height: int, width: int) -> torch.Tensor:
    """Per-image (N, 2, 3) matrices mapping output to input positions, in affine_grid's [-1, 1] space.

    Read the product right to left as "where does an output pixel come from": undo the
    translation, undo the rotation, undo the flip, then land inside the crop of the source.
    """
    n = u.shape[0]
    eye = torch.eye(3, device=u.device).repeat(n, 1, 1)

    # Content moves by +t, so an output pixel samples at -t; a fraction f of the side is 2f in [-1, 1] units.
    shift = eye.clone()
    shift[:, 0, 2] = -2 * _symmetric(u[:, _U_TX], policy.max_translate)
    shift[:, 1, 2] = -2 * _symmetric(u[:, _U_TY], policy.max_translate)

    # Rotate in pixel space, not in normalized space, so non-square images are not sheared:
    # the normalized matrix is S^-1 R S with S = diag(W/2, H/2).
    angle = torch.deg2rad(_symmetric(u[:, _U_ANGLE], policy.max_rotation_deg))
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotate = eye.clone()
    rotate[:, 0, 0], rotate[:, 0, 1] = cos, -sin * height / width
    rotate[:, 1, 0], rotate[:, 1, 1] = sin * width / height, cos

    flip = eye.clone()
    if policy.flip:
        flip[:, 0, 0] = torch.where(u[:, _U_FLIP] < 0.5, -1.0, 1.0)

    crop = eye.clone()
    if policy.random_resized_crop:
        crop_w, crop_h = _crop_size(u, height, width)
        crop[:, 0, 0], crop[:, 1, 1] = crop_w, crop_h
        # Centre anywhere that keeps the crop inside the image.
        crop[:, 0, 2] = _symmetric(u[:, _U_CX], 1.0) * (1 - crop_w)
        crop[:, 1, 2] = _symmetric(u[:, _U_CY], 1.0) * (1 - crop_h)

    return (crop @ flip @ rotate @ shift)[:, :2, :]


def _crop_size(u: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop width and height as fractions of the image, as RandomResizedCrop samples them.

    torchvision retries up to 10 times when a crop does not fit; in batch we clamp a side to the
    full image instead, which keeps one vectorized draw at the cost of slightly favouring
    full-width or full-height crops when scale and ratio are both near their maxima.
    """
    scale = CROP_SCALE[0] + u[:, _U_SCALE] * (CROP_SCALE[1] - CROP_SCALE[0])
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    ratio = torch.exp(log_lo + u[:, _U_RATIO] * (log_hi - log_lo))  # log-uniform, like torchvision
    area = scale * height * width
    crop_w = (torch.sqrt(area * ratio) / width).clamp(max=1.0)
    crop_h = (torch.sqrt(area / ratio) / height).clamp(max=1.0)
    return crop_w, crop_h


def _photometric(images: torch.Tensor, u: torch.Tensor, policy: AugmentPolicy) -> torch.Tensor:
    """Per-image brightness then contrast, as (N, 1, 1, 1) factors broadcast over the batch."""
    per_image = (-1, 1, 1, 1)
    if policy.brightness:
        factor = 1 + _symmetric(u[:, _U_BRIGHT], policy.brightness)
        images = images * factor.view(per_image).to(images.dtype)
    if policy.contrast:
        # The mean over all channels and pixels stays put, so a constant image stays constant.
        factor = (1 + _symmetric(u[:, _U_CONTRAST], policy.contrast)).view(per_image).to(images.dtype)
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        images = mean + (images - mean) * factor
    return images


def _autoaugment(images: torch.Tensor, seed: int) -> torch.Tensor:
    """torchvision AutoAugment (ImageNet policy), one image at a time.

    Cost: a Python loop of N small kernel chains per batch (about 10 ms on top of the basic
    policy's 30 ms for 64 images of 128 px on a 2-core CPU), which is why it is opt-in. The loop
    is needed because AutoAugment given a batch picks one sub-policy for all of its images.
    It accepts 1- and 3-channel uint8 images as they are, so no channel expansion is needed.

    AutoAugment takes no generator and draws from torch's global CPU RNG, so we seed that from
    our generator inside `fork_rng`, which restores the caller's state afterwards. We seed only
    the CPU generator: `torch.manual_seed` would also reseed the caller's CUDA RNG.
    """
    from torchvision.transforms import v2  # torchvision is only needed when this option is on

    if images.shape[1] not in (1, 3):
        raise ValueError(f"autoaugment needs 1 or 3 channels, got {images.shape[1]}")
    transform = v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)
    as_uint8 = (images * 255).round_().clamp_(0, 255).to(torch.uint8)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        augmented = torch.stack([transform(image) for image in as_uint8])
    return augmented.to(images.dtype) / 255
