"""Batched, seeded augmentation of (image, label) pairs for segmentation training.

Geometry (flip, rotation, zoom, shift) moves image and label together; photometric jitter
and noise touch the image only; a random circular field of view (as real scopes show)
blacks out the border and labels it background. All randomness comes from the
``torch.Generator`` passed in, so a training step is reproducible from (seed, step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class AugmentConfig:
    flip: float = 0.5              # probability of a horizontal flip
    rotate_deg: float = 10.0       # uniform in +-rotate_deg
    zoom: tuple[float, float] = (0.9, 1.3)
    shift: float = 0.05            # fraction of the image size
    brightness: float = 0.2        # multiplicative, 1 +- brightness
    contrast: float = 0.2
    saturation: float = 0.2
    channel_gain: float = 0.08     # per-channel gain 1 +- channel_gain (hue/white balance)
    noise: float = 0.02            # std of Gaussian noise is uniform in 0..noise
    fov: float = 0.5               # probability of a random circular field-of-view mask


def _u(g, n, lo, hi):
    return lo + (hi - lo) * torch.rand(n, generator=g)


def augment(images: torch.Tensor, labels: torch.Tensor, g: torch.Generator, cfg: AugmentConfig = AugmentConfig()):
    """images float (N, 3, H, W) in [0, 1], labels long (N, H, W) -> augmented copies."""
    n, _, h, w = images.shape
    # --- geometry: one affine grid per sample (output -> input coordinates, normalised)
    angle = _u(g, n, -cfg.rotate_deg, cfg.rotate_deg) * math.pi / 180
    scale = 1.0 / _u(g, n, *cfg.zoom)
    flip = torch.where(torch.rand(n, generator=g) < cfg.flip, -1.0, 1.0)
    tx, ty = _u(g, n, -cfg.shift, cfg.shift) * 2, _u(g, n, -cfg.shift, cfg.shift) * 2
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    aspect = w / h  # rotate in pixel space, not in the squashed normalised square
    theta = torch.stack([
        torch.stack([cos * flip, -sin / aspect, tx], 1),
        torch.stack([sin * aspect * flip, cos, ty], 1),
    ], 1)
    grid = F.affine_grid(theta, (n, 3, h, w), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                           align_corners=False)[:, 0].long()

    # --- photometric
    b = _u(g, n, 1 - cfg.brightness, 1 + cfg.brightness).view(n, 1, 1, 1)
    c = _u(g, n, 1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1)
    s = _u(g, n, 1 - cfg.saturation, 1 + cfg.saturation).view(n, 1, 1, 1)
    gain = _u(g, n * 3, 1 - cfg.channel_gain, 1 + cfg.channel_gain).view(n, 3, 1, 1)
    gray = images.mean(1, keepdim=True)
    images = gray + (images - gray) * s
    mean = images.mean((1, 2, 3), keepdim=True)
    images = (mean + (images - mean) * c) * b * gain
    sigma = _u(g, n, 0, cfg.noise).view(n, 1, 1, 1)
    images = images + sigma * torch.randn(images.shape, generator=g)

    # --- random circular field of view (radius 0.4x longer side .. half the diagonal)
    use = torch.rand(n, generator=g) < cfg.fov
    if bool(use.any()):
        r = _u(g, n, 0.4 * max(w, h), 0.5 * math.hypot(w, h)).view(n, 1, 1)
        cx = (w / 2 + _u(g, n, -0.1, 0.1) * w).view(n, 1, 1)
        cy = (h / 2 + _u(g, n, -0.1, 0.1) * h).view(n, 1, 1)
        yy = torch.arange(h, dtype=torch.float32).view(1, h, 1) + 0.5
        xx = torch.arange(w, dtype=torch.float32).view(1, 1, w) + 0.5
        outside = ((xx - cx) ** 2 + (yy - cy) ** 2 > r * r) & use.view(n, 1, 1)
        images = images.masked_fill(outside[:, None], 0.0)
        labels = labels.masked_fill(outside, 0)
    return images.clamp(0, 1), labels
