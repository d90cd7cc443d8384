"""MoCo v2 views for grayscale MRI, made in batch on the batch's device.

MoCo v2 (Chen et al. 2020, after SimCLR) draws each view as: random resized crop (area 0.2-1),
colour jitter (p=0.8), random grayscale (p=0.2), Gaussian blur (sigma 0.1-2, p=0.5), horizontal
flip. MRI is grayscale, so saturation, hue and random grayscale have nothing to act on: only
brightness and contrast jitter remain. Crop and flip are one affine matrix per image applied by
one `grid_sample`, which also resizes to the view size (bilinear, without antialiasing: fine for
the usual case of a cache decoded at the view size); the blur is one grouped convolution with
a kernel per image (a delta kernel for images that are not blurred). No per-image Python loop.

Randomness comes only from the caller's `torch.Generator`, drawn on its device and moved to the
batch's device (as in bench/data/augment.py), so a seed gives the same views on CPU and GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# MoCo v2 states blur sigmas for 224-px crops; we scale them to the view size so that a 64-px view
# loses the same share of detail as the 224-px view would.
_SIGMA_REFERENCE_SIZE = 224

# Columns of the per-image table of uniform [0, 1) numbers, drawn once per view.
_SCALE, _RATIO, _CX, _CY, _FLIP, _JITTER, _BRIGHT, _CONTRAST, _BLUR, _SIGMA = range(10)
_N_UNIFORMS = 10


@dataclass(frozen=True)
class MocoAugment:
    crop_scale: tuple[float, float] = (0.2, 1.0)  # area fraction of the source image
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio, log-uniform
    flip_p: float = 0.5
    jitter_p: float = 0.8  # brightness and contrast are jittered together, as ColorJitter does
    brightness: float = 0.4  # multiply by a factor in [1-b, 1+b]
    contrast: float = 0.4  # scale deviation from the image mean by [1-c, 1+c]
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # in pixels of a 224-px view


def two_views(images: torch.Tensor, size: int, aug: MocoAugment,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independently augmented (N, C, size, size) views of a float batch in [0, 1]."""
    return augment_view(images, size, aug, generator), augment_view(images, size, aug, generator)


def augment_view(images: torch.Tensor, size: int, aug: MocoAugment,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """One MoCo v2 view of each image of a float (N, C, H, W) batch in [0, 1], resized to `size`."""
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
    n, c = images.shape[:2]
    draw_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(n, _N_UNIFORMS, generator=generator, device=draw_device).to(images.device, torch.float32)

    theta = _crop_and_flip(u, aug, images.shape[-2], images.shape[-1]).to(images.dtype)
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    views = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    views = _jitter(views, u, aug)
    return _blur(views, u, aug).clamp(0.0, 1.0)  # a normalised kernel can still round a hair above 1


def _between(u: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    return bounds[0] + u * (bounds[1] - bounds[0])


def _crop_and_flip(u: torch.Tensor, aug: MocoAugment, height: int, width: int) -> torch.Tensor:
    """(N, 2, 3) matrices from view to source coordinates in affine_grid's [-1, 1] space.

    Like RandomResizedCrop, but a crop that does not fit is clamped to the full side instead of
    redrawn up to ten times, which keeps the draw vectorised.
    """
    area = _between(u[:, _SCALE], aug.crop_scale) * height * width
    log_ratio = _between(u[:, _RATIO], (math.log(aug.crop_ratio[0]), math.log(aug.crop_ratio[1])))
    ratio = torch.exp(log_ratio)
    crop_w = (torch.sqrt(area * ratio) / width).clamp(max=1.0)
    crop_h = (torch.sqrt(area / ratio) / height).clamp(max=1.0)
    flip = torch.where(u[:, _FLIP] < aug.flip_p, -1.0, 1.0)
    theta = torch.zeros(u.shape[0], 2, 3, device=u.device)
    theta[:, 0, 0] = crop_w * flip  # flipping the view's x axis, then cropping
    theta[:, 1, 1] = crop_h
    theta[:, 0, 2] = (2 * u[:, _CX] - 1) * (1 - crop_w)  # any centre that keeps the crop inside
    theta[:, 1, 2] = (2 * u[:, _CY] - 1) * (1 - crop_h)
    return theta


def _jitter(views: torch.Tensor, u: torch.Tensor, aug: MocoAugment) -> torch.Tensor:
    """Brightness then contrast, each clamped to [0, 1] like torchvision's; factor 1 where not jittered."""
    on = u[:, _JITTER] < aug.jitter_p
    per_image = (-1, 1, 1, 1)
    bright = torch.where(on, _between(u[:, _BRIGHT], (1 - aug.brightness, 1 + aug.brightness)), 1.0)
    views = (views * bright.view(per_image).to(views.dtype)).clamp(0.0, 1.0)
    contrast = torch.where(on, _between(u[:, _CONTRAST], (1 - aug.contrast, 1 + aug.contrast)), 1.0)
    mean = views.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + (views - mean) * contrast.view(per_image).to(views.dtype)).clamp(0.0, 1.0)


def _blur(views: torch.Tensor, u: torch.Tensor, aug: MocoAugment) -> torch.Tensor:
    """Separable Gaussian blur with a sigma per image, as two grouped 1-D convolutions."""
    n, c, h, w = views.shape
    scale = w / _SIGMA_REFERENCE_SIZE
    sigma = _between(u[:, _SIGMA], aug.blur_sigma) * scale
    half = min(math.ceil(3 * aug.blur_sigma[1] * scale), (min(h, w) - 1) // 2)  # 3 sigma; reflect needs < side
    if half < 1:
        return views
    offsets = torch.arange(-half, half + 1, device=views.device, dtype=torch.float32)
    kernels = torch.exp(-offsets.view(1, -1) ** 2 / (2 * sigma.view(-1, 1) ** 2))
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    delta = (offsets == 0).float().expand_as(kernels)
    kernels = torch.where((u[:, _BLUR] < aug.blur_p).view(-1, 1), kernels, delta)
    weight = kernels.repeat_interleave(c, dim=0).to(views.dtype)  # one kernel per (image, channel)
    x = F.pad(views.reshape(1, n * c, h, w), (half, half, half, half), mode="reflect")
    x = F.conv2d(x, weight.view(n * c, 1, -1, 1), groups=n * c)  # vertical
    x = F.conv2d(x, weight.view(n * c, 1, 1, -1), groups=n * c)  # horizontal
    return x.view(n, c, h, w)
