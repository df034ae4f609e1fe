"""Colour statistics of renders and real frames (numpy only): what ``sim2real calibrate``
matches and what the README's realism figures report.

Per class: the mean and spread of the CIELAB colour of every pixel of that class inside the
field of view, pooled over all images (CIE76 ΔE between two means is their Euclidean distance). Per image set:
the share of pixels inside the field of view with a channel at or above 250 ("clipped").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..defaults import TISSUES
from ..errors import Sim2RealError

BACKGROUND = "background"  # what real masks leave unlabelled: in renders, every tissue no other class names
CLIP_LEVEL = 250  # a channel at or above this counts as clipped
REAL_FOV_LEVEL = 12  # real frames: the black border around the scope's field of view is below this

# sRGB (D65) -> XYZ, and the D65 white point
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


_C = np.arange(256) / 255.0
_LINEAR = np.where(_C <= 0.04045, _C / 12.92, ((_C + 0.055) / 1.055) ** 2.4)  # sRGB uint8 -> linear


def srgb8_to_linear(rgb8: np.ndarray) -> np.ndarray:
    """sRGB 0..255 -> linear RGB 0..1 (a table lookup for uint8 input)."""
    rgb8 = np.asarray(rgb8)
    if rgb8.dtype == np.uint8:
        return _LINEAR[rgb8]
    c = rgb8.astype(np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear RGB 0..1 -> sRGB 0..1 (clipped)."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def srgb8_to_lab(rgb8: np.ndarray, dtype=np.float64) -> np.ndarray:
    """(..., 3) uint8 sRGB -> (..., 3) CIELAB (D65; L in 0..100), computed in ``dtype``."""
    xyz = srgb8_to_linear(rgb8).astype(dtype, copy=False) @ (_RGB_TO_XYZ.T / _WHITE[None, :]).astype(dtype)
    d = 6 / 29
    f = np.where(xyz > d ** 3, np.cbrt(xyz), xyz / (3 * d * d) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def lab_to_linear(lab) -> np.ndarray:
    """CIELAB (D65) -> linear RGB (unclipped), in the input's float precision (float64 otherwise)."""
    lab = np.asarray(lab)
    lab = lab if lab.dtype in (np.float32, np.float64) else lab.astype(np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    d = 6 / 29
    xyz = np.where(f > d, f ** 3, 3 * d * d * (f - 4 / 29))
    return xyz @ (np.linalg.inv(_RGB_TO_XYZ) * _WHITE[None, :]).T.astype(lab.dtype)


def lab_to_srgb8(lab: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) -> sRGB uint8 (..., 3) (float32 arithmetic; out-of-gamut colours clipped)."""
    lin = np.clip(lab_to_linear(np.asarray(lab, np.float32)), 0, 1)
    return np.clip(np.round(linear_to_srgb(lin) * 255), 0, 255).astype(np.uint8)


def delta_e76(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, float) - np.asarray(b, float)))


@dataclass
class ColourStats:
    """Pooled per-class CIELAB moments and the clipped share of an image set."""

    classes: list[str]
    n: dict = field(default_factory=dict)
    s1: dict = field(default_factory=dict)
    s2: dict = field(default_factory=dict)
    images: int = 0
    fov_pixels: int = 0
    clipped_pixels: int = 0

    def add(self, image: np.ndarray, labels: np.ndarray, fov: np.ndarray) -> None:
        """One image; ``labels`` holds 1.. for ``classes`` in order (0 and 255: neither);
        only pixels inside ``fov`` count."""
        lab = srgb8_to_lab(image)
        for i, name in enumerate(self.classes):
            sel = (labels == i + 1) & fov
            px = lab[sel]
            self.n[name] = self.n.get(name, 0) + len(px)
            self.s1[name] = self.s1.get(name, 0) + px.sum(0)
            self.s2[name] = self.s2.get(name, 0) + (px ** 2).sum(0)
        self.images += 1
        self.fov_pixels += int(fov.sum())
        self.clipped_pixels += int((image.max(-1) >= CLIP_LEVEL)[fov].sum())

    def mean(self, name: str) -> np.ndarray | None:
        n = self.n.get(name, 0)
        return None if n == 0 else self.s1[name] / n

    def std(self, name: str) -> np.ndarray | None:
        n = self.n.get(name, 0)
        if n == 0:
            return None
        return np.sqrt(np.maximum(self.s2[name] / n - (self.s1[name] / n) ** 2, 0))

    @property
    def clipped_share(self) -> float:
        return self.clipped_pixels / max(self.fov_pixels, 1)

    def to_json(self) -> dict:
        out = {"images": self.images, "clipped_share": round(self.clipped_share, 5), "classes": {}}
        for c in self.classes:
            m, s = self.mean(c), self.std(c)
            out["classes"][c] = {"pixels": int(self.n.get(c, 0)),
                                 "lab_mean": None if m is None else [round(float(x), 2) for x in m],
                                 "lab_std": None if s is None else [round(float(x), 2) for x in s],
                                 "srgb_mean": None if m is None else
                                 [int(round(float(x))) for x in 255 * linear_to_srgb(lab_to_linear(m))]}
        return out


def compare(render: ColourStats, real: ColourStats) -> dict:
    """ΔE (CIE76) of the class means, spread ratios and clipped shares, render vs real."""
    out = {"clipped_share_render": round(render.clipped_share, 5), "clipped_share_real": round(real.clipped_share, 5),
           "classes": {}}
    for c in real.classes:
        a, b = render.mean(c), real.mean(c)
        sa, sb = render.std(c), real.std(c)
        out["classes"][c] = {
            "delta_e76": None if a is None or b is None else round(delta_e76(a, b), 2),
            "spread_ratio": None if sa is None or sb is None else
            [round(float(x), 3) for x in sa / np.maximum(sb, 1e-6)],
        }
    return out


def real_fov(image: np.ndarray) -> np.ndarray:
    """Inside the scope's field of view in a real frame: not the black border."""
    return image.max(-1) > REAL_FOV_LEVEL


def real_stats(images_dir, masks_dir, mapping: dict[str, list[int]], limit: int | None = None,
               ignore: int = 255, step: int = 2) -> ColourStats:
    """Stats of real frames ``images_dir/<stem>.*`` with masks ``masks_dir/<stem>.png``.

    ``limit`` frames at most (spread evenly); every ``step``-th pixel per axis (pooled
    means do not need every pixel of an 854x480 frame).
    """
    from ..classes import group_lut
    from ..io import read_image_and_mask
    from ..segment.data import IMAGE_SUFFIXES

    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d, what in ((images_dir, "--real"), (masks_dir, "--masks")):
        if not d.is_dir():
            raise Sim2RealError(f"{what} {d}: no such folder")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not images:
        raise Sim2RealError(f"--real {images_dir} holds no images (.jpg/.png)")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() == ".png"}
    pairs = [(p, masks[p.stem]) for p in images if p.stem in masks]
    if not pairs:
        raise Sim2RealError(f"--masks {masks_dir} has no mask named like an image of {images_dir} "
                            f"(expected <stem>.png, e.g. {images[0].stem}.png)")
    if limit:
        pairs = pairs[::max(1, len(pairs) // limit)][:limit]
    lut = group_lut([list(v) for v in mapping.values()], (ignore,))
    stats = ColourStats(list(mapping))
    for img_path, mask_path in pairs:
        img, mask = read_image_and_mask(img_path, mask_path)
        img, mask = img[::step, ::step], mask[::step, ::step]
        stats.add(img, lut[mask.astype(np.uint8)], real_fov(img))
    return stats


def background_tissues(classes) -> list[str]:
    """The tissues that ``background`` pools: those of the procedural scene no other class names."""
    return [t for t in TISSUES if t not in classes]


def render_stats(root, classes: list[str]) -> ColourStats:
    """Stats of a rendered data set; ``tool`` pools ``tool_shaft`` + ``tool_tip`` (as segment does),
    ``background`` every tissue no other class names (liver, fat, wall and ligament beside
    ``gallbladder``), as the real masks leave them unlabelled."""
    from ..classes import group_lut
    from ..dataset.format import open_dataset
    from ..imaging.postprocess import fov_mask
    from ..segment.data import sim_groups

    ds = open_dataset(root)
    sim_map = None
    if BACKGROUND in classes:
        sim_map = {BACKGROUND: [t for t in background_tissues(classes) if t in ds.classes.names]}
    lut = group_lut(sim_groups(ds.classes, classes, sim_map))
    stats = ColourStats(list(classes))
    for s in ds:
        img = s.image()
        circle = s.meta.get("fov_mask")
        h, w = img.shape[:2]
        fov = fov_mask(w, h, None if not circle else (circle["cx"], circle["cy"], circle["radius"]))
        stats.add(img, lut[s.segmentation()], fov)
    return stats
