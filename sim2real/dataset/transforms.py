"""Joint transforms for :func:`sim2real.dataset.torch_dataset` items.

A transform is a callable that takes one item (a dict of tensors) and returns one dict
with the same keys, the image and every label moved together::

    from sim2real.dataset import torch_dataset
    from sim2real.dataset.transforms import Compose, RandomCrop, RandomHorizontalFlip, Resize

    ds = torch_dataset("data/sim", keys=("image", "segmentation", "normals", "K"),
                       transform=Compose(RandomCrop((192, 256)), RandomHorizontalFlip(), Resize((96, 128))))

Keys they move: ``image`` (3, H, W) resampled bilinearly; the labels ``segmentation``,
``instances``, ``depth`` (H, W) and ``normals`` (3, H, W) by nearest neighbour, so no label
value is ever blended or invented; ``K`` (3, 3) and ``tips`` (N, 3: u, v, visibility in
K's pixel convention) follow the pixels. A flip mirrors the camera frame's x axis: normals'
x component changes sign and K's principal point moves to ``W - cx``. Other keys pass
through unchanged. Random choices use torch's generator, which a ``DataLoader`` seeds per
worker (``torch.manual_seed`` makes a run repeatable); the classes pickle, so workers
started with spawn receive them too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LABELS = ("segmentation", "instances", "depth", "normals")


def _size(item: dict) -> tuple[int, int]:
    for key in ("image", *LABELS):
        if key in item:
            return tuple(item[key].shape[-2:])
    raise KeyError("the item holds no image or label to transform")


def hflip(item: dict) -> dict:
    """``item`` mirrored left to right."""
    _, w = _size(item)
    out = dict(item)
    for key in ("image", *LABELS):
        if key in item:
            out[key] = item[key].flip(-1)
    if "normals" in item:
        out["normals"] = out["normals"].clone()
        out["normals"][0] *= -1
    if "K" in item:
        k = item["K"].clone()
        k[0, 2] = w - k[0, 2]
        k[0, 1] = -k[0, 1]
        out["K"] = k
    if "tips" in item:
        t = item["tips"].clone()
        t[:, 0] = w - t[:, 0]
        out["tips"] = t
    return out


def crop(item: dict, top: int, left: int, height: int, width: int) -> dict:
    """The ``height`` x ``width`` window of ``item`` at (``top``, ``left``); tips leaving it get visibility 0."""
    out = dict(item)
    for key in ("image", *LABELS):
        if key in item:
            out[key] = item[key][..., top:top + height, left:left + width]
    if "K" in item:
        k = item["K"].clone()
        k[0, 2] -= left
        k[1, 2] -= top
        out["K"] = k
    if "tips" in item:
        t = item["tips"].clone()
        t[:, 0] -= left
        t[:, 1] -= top
        outside = ~((t[:, 0] >= 0) & (t[:, 0] < width) & (t[:, 1] >= 0) & (t[:, 1] < height))
        t[outside, 2] = 0
        out["tips"] = t
    return out


def _nearest_index(n_in: int, n_out: int) -> torch.Tensor:
    """For each output pixel, the input pixel containing its centre."""
    return ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out)).floor().long().clamp_(max=n_in - 1)


def resize(item: dict, height: int, width: int) -> dict:
    """``item`` at ``height`` x ``width``: the image bilinear (antialiased), labels nearest."""
    h, w = _size(item)
    out = dict(item)
    if "image" in item:
        img = item["image"]
        out["image"] = F.interpolate(img[None].float(), size=(height, width), mode="bilinear",
                                     align_corners=False, antialias=True)[0].to(img.dtype)
    rows, cols = _nearest_index(h, height), _nearest_index(w, width)
    for key in LABELS:
        if key in item:
            out[key] = item[key].index_select(-2, rows).index_select(-1, cols)
    sx, sy = width / w, height / h
    if "K" in item:
        k = item["K"].clone()
        k[0] *= sx
        k[1] *= sy
        out["K"] = k
    if "tips" in item:
        t = item["tips"].clone()
        t[:, 0] *= sx
        t[:, 1] *= sy
        out["tips"] = t
    return out


class Compose:
    """Apply transforms in order."""

    def __init__(self, *transforms):
        self.transforms = transforms

    def __call__(self, item: dict) -> dict:
        for t in self.transforms:
            item = t(item)
        return item


class RandomHorizontalFlip:
    """Mirror left to right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, item: dict) -> dict:
        return hflip(item) if torch.rand(()) < self.p else item


class RandomCrop:
    """A window of ``size`` (height, width) at a uniformly random place."""

    def __init__(self, size: tuple[int, int]):
        self.size = tuple(size)

    def __call__(self, item: dict) -> dict:
        h, w = _size(item)
        ch, cw = self.size
        if ch > h or cw > w:
            raise ValueError(f"RandomCrop {ch}x{cw} (height x width) is larger than the item, {h}x{w}")
        top = int(torch.randint(0, h - ch + 1, ()))
        left = int(torch.randint(0, w - cw + 1, ()))
        return crop(item, top, left, ch, cw)


class Resize:
    """Resample to ``size`` (height, width): the image bilinear, labels nearest."""

    def __init__(self, size: tuple[int, int]):
        self.size = tuple(size)

    def __call__(self, item: dict) -> dict:
        return resize(item, *self.size)
