"""Training images: sim renders, real frames from folders and videos, and augmentation.

Every random choice comes from a ``numpy.random.Generator`` the caller seeds (the
trainer seeds one per (seed, step)), so a resumed run draws exactly what a straight run
would have drawn.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..dataset.format import open_dataset
from ..errors import DatasetError, one_line
from ..io import read_image_rgb
from ..io.videos import VIDEO_EXTS, select_videos, videos_seen
from .config import DataConfig

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def trim_black_borders(img: np.ndarray, thresh: int) -> np.ndarray:
    """Drop outer rows/columns that are black bars (99th percentile below ``thresh``).

    The circular field of view itself stays: only bars that are black across their whole
    length (letterboxing, pillarboxing from capture cards) are removed.
    """
    if thresh <= 0:
        return img
    g = img.max(axis=2)
    rows = np.where(np.percentile(g, 99, axis=1) >= thresh)[0]
    cols = np.where(np.percentile(g, 99, axis=0) >= thresh)[0]
    if rows.size < 16 or cols.size < 16:  # (nearly) all black: keep as is
        return img
    return img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)


def resize_short(x: torch.Tensor, short: int | float, multiple: int = 1) -> torch.Tensor:
    """Resize (C, H, W) or (B, C, H, W) so the short side is ``short`` (antialiased)."""
    squeeze = x.dim() == 3
    if squeeze:
        x = x[None]
    h, w = x.shape[-2:]
    s = short / min(h, w)
    size = (max(multiple, round(h * s / multiple) * multiple), max(multiple, round(w * s / multiple) * multiple))
    if size != (h, w):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x[0] if squeeze else x


def fov_mask(h: int, w: int, rng: np.random.Generator, cfg: DataConfig) -> torch.Tensor:
    """A random circular field of view (1 inside, 0 outside), (1, H, W).

    Radius from ``fov_radius[0]`` x the longer side to ``fov_radius[1]`` x the diagonal;
    centre offset up to ``fov_offset`` x width/height.
    """
    lo = cfg.fov_radius[0] * max(h, w)
    hi = max(lo, cfg.fov_radius[1] * math.hypot(h, w))
    r = rng.uniform(lo, hi)
    cx = w / 2 + rng.uniform(-cfg.fov_offset, cfg.fov_offset) * w
    cy = h / 2 + rng.uniform(-cfg.fov_offset, cfg.fov_offset) * h
    yy = torch.arange(h, dtype=torch.float32)[:, None] + 0.5
    xx = torch.arange(w, dtype=torch.float32)[None, :] + 0.5
    return (((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r).float()[None]


def _rotate(x: torch.Tensor, deg: float, mode: str = "bilinear") -> torch.Tensor:
    if deg == 0:
        return x
    h, w = x.shape[-2:]
    a = math.radians(deg)
    # affine_grid works in normalised coordinates; correct for the aspect ratio.
    theta = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0.0],
                          [math.sin(a) * w / h, math.cos(a), 0.0]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, [1, *x.shape], align_corners=False)
    return F.grid_sample(x[None].float(), grid, mode=mode, padding_mode="zeros", align_corners=False)[0].to(x.dtype)


def _resize_labels(seg: torch.Tensor, size) -> torch.Tensor:
    """(1, H, W) label ids resized with nearest neighbour (labels are never blended)."""
    if tuple(seg.shape[-2:]) == tuple(size):
        return seg
    return F.interpolate(seg[None].float(), size=size, mode="nearest-exact")[0].to(seg.dtype)


def augment(img: np.ndarray, rng: np.random.Generator, cfg: DataConfig, fov_prob: float,
            short: float | None = None, seg: np.ndarray | None = None):
    """uint8 (H, W, 3) -> augmented training crop, float (3, crop_h, crop_w) in [-1, 1].

    Random resize (short side ``short`` x a factor from ``scale_range``; ``short``
    defaults to ``load_size``), rotation, crop (black padding where the image is
    smaller), optional flip, brightness/contrast jitter, and a random circular
    field-of-view mask. With ``seg`` (uint8 (H, W) label ids) returns ``(crop, labels)``,
    the labels put through the same geometry with nearest neighbour (0 where padded or
    masked out, like the render's own outside-the-field-of-view labels).
    """
    ch, cw = int(cfg.crop[0]), int(cfg.crop[1])
    short = cfg.load_size if short is None else short
    x = to_tensor(img)
    lab = None if seg is None else torch.from_numpy(np.ascontiguousarray(seg))[None]
    x = resize_short(x, short * rng.uniform(*cfg.scale_range))
    if lab is not None:
        lab = _resize_labels(lab, x.shape[-2:])
    deg = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
    x = _rotate(x, deg)
    if lab is not None:
        lab = _rotate(lab, deg, "nearest")
    h, w = x.shape[-2:]
    if h < ch or w < cw:
        ph, pw = max(0, ch - h), max(0, cw - w)
        top, left = int(rng.integers(0, ph + 1)), int(rng.integers(0, pw + 1))
        x = F.pad(x, (left, pw - left, top, ph - top))
        if lab is not None:
            lab = F.pad(lab, (left, pw - left, top, ph - top))
        h, w = x.shape[-2:]
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    x = x[:, top:top + ch, left:left + cw]
    if lab is not None:
        lab = lab[:, top:top + ch, left:left + cw]
    if rng.random() < cfg.hflip_prob:
        x = x.flip(-1)
        if lab is not None:
            lab = lab.flip(-1)
    c = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
    b = rng.uniform(-cfg.brightness, cfg.brightness)
    x = ((x - x.mean()) * c + x.mean() + b).clamp_(0, 1)
    if rng.random() < fov_prob:
        m = fov_mask(ch, cw, rng, cfg)
        x = x * m
        if lab is not None:
            lab = lab * m.to(lab.dtype)
    if lab is not None:
        return x * 2 - 1, lab[0]
    return x * 2 - 1


def _read(path: Path, what: str) -> np.ndarray:
    try:
        return read_image_rgb(path)
    except Exception as exc:  # imageio raises many types for broken files
        raise DatasetError(f"{what} {path} is unreadable ({one_line(exc, with_type=True)}); "
                           f"delete or replace the file") from None


class SimImages:
    """The images of a rendered data set and, for the semantic-consistency loss, their labels."""

    def __init__(self, root: str | os.PathLike):
        ds = open_dataset(root)
        if ds.kind == "translation":
            raise DatasetError(f"{root} is a translation data set; --sim needs renders from 'sim2real render'")
        if len(ds) == 0:
            raise DatasetError(f"{root} holds no samples; render some with 'sim2real render' first")
        self.dataset = ds
        self.paths = [s.path("image") for s in ds]
        self.seg_paths = [s.path("segmentation") for s in ds]

    def __len__(self) -> int:
        return len(self.paths)

    def get(self, i: int) -> np.ndarray:
        return _read(self.paths[i], "sim image")

    def get_labels(self, i: int) -> np.ndarray:
        """uint8 (H, W) class ids of render ``i`` (the data set's class table)."""
        from ..io import read_png

        p = self.seg_paths[i]
        if not p.is_file():
            raise DatasetError(f"{p} is missing; the semantic loss needs the renders' segmentation.png "
                               f"(re-render, or set loss.semantic = 0)")
        return read_png(p)

    def short_side(self) -> int:
        """The renders' median short side in pixels (their native training scale)."""
        return min(self.size())

    def size(self) -> tuple[int, int]:
        """The renders' median (height, width) in pixels (of at most 16 spread over the set)."""
        sizes = []
        for s in list(self.dataset)[:: max(1, len(self.dataset) // 16)]:
            res = s.meta.get("resolution")  # (w, h)
            sizes.append((res[1], res[0]) if res else s.image().shape[:2])
        return tuple(int(v) for v in np.median(np.array(sizes), axis=0))


def fit_to_renders(cfg, sim) -> None:
    """Fill in what a new run takes from its renders and check that the crop fits them:
    ``data.native_short`` (native scale: the renders' median short side) and ``data.crop``
    (``[0, 0]``: the largest crop inside them). Raises a one-line ``ConfigError`` for a
    crop larger than the renders. Idempotent; ``sim`` is a :class:`SimImages` (or any
    source with ``get``)."""
    from .config import fit_crop

    size = sim.size() if hasattr(sim, "size") else tuple(sim.get(0).shape[:2])
    if cfg.data.load_size == 0 and cfg.data.native_short == 0:
        cfg.data.native_short = min(size)
    cfg.data.crop = fit_crop(cfg, size)


def find_real_files(paths, videos: list[str] | None = None,
                    exclude_videos: list[str] | None = None) -> tuple[list[Path], list[Path]]:
    """(images, videos) found under ``paths`` (files or folders, searched recursively), only of
    the ``videos`` given / not of ``exclude_videos`` (see :mod:`sim2real.io.videos`)."""
    images: list[Path] = []
    video_files: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise DatasetError(f"real path {p} does not exist; pass folders of real frames or video files")
        if p.is_dir() and (p / "dataset.json").is_file():
            raise DatasetError(f"real path {p} is a sim2real data set (renders or translations), not real frames; "
                               f"pass a folder of real frames or videos")
        files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file() and not _is_mask(q, p))
        for f in files:
            ext = f.suffix.lower()
            if ext in IMAGE_EXTS:
                images.append(f)
            elif ext in VIDEO_EXTS:
                video_files.append(f)
            elif p.is_file():
                raise DatasetError(f"real path {p} is neither an image ({', '.join(IMAGE_EXTS)}) "
                                   f"nor a video ({', '.join(VIDEO_EXTS)})")
    if not images and not video_files:
        where = ", ".join(str(p) for p in paths)
        raise DatasetError(f"no real images or videos found under {where} (looked for "
                           f"{' '.join(IMAGE_EXTS + VIDEO_EXTS)}); pass --real with folders of real frames")
    if videos is None and exclude_videos is None:
        return images, video_files
    kept = set(select_videos(images + video_files, videos, exclude_videos, ", ".join(str(p) for p in paths)))
    return [f for f in images if f in kept], [f for f in video_files if f in kept]


def _is_mask(f: Path, root: Path) -> bool:
    """A label mask of a labelled real folder (``images/`` + ``masks/`` side by side): not a frame."""
    rel = f.relative_to(root).parts
    return any(part == "masks" and (root.joinpath(*rel[:i]) / "images").is_dir()
               for i, part in enumerate(rel[:-1]))


def read_video_frames(path: Path, fps: float, short: int, trim: int = 0) -> list[np.ndarray]:
    """Frames of a video sampled at ``fps`` (frames per second), short side resized to ``short``."""
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path)
    except Exception as exc:
        raise DatasetError(f"video {path} is unreadable ({one_line(exc, with_type=True)}); reading videos needs "
                           f"a video plugin (pip install av), or delete the file") from None
    src_fps = float(meta.get("fps") or 0)
    if not src_fps and meta.get("duration"):  # GIF: duration is milliseconds per frame
        src_fps = 1000.0 / float(meta["duration"])
    src_fps = src_fps or fps
    step = max(1, round(src_fps / fps))
    frames = []
    try:
        for i, frame in enumerate(iio.imiter(path)):
            if i % step:
                continue
            img = np.asarray(frame)
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            img = trim_black_borders(img[..., :3].astype(np.uint8), trim)
            small = resize_short(to_tensor(img), short)
            frames.append((small.permute(1, 2, 0) * 255).round().clamp(0, 255).byte().numpy())
    except Exception as exc:
        raise DatasetError(f"video {path} is unreadable after {len(frames)} sampled frames "
                           f"({one_line(exc, with_type=True)}); re-encode or delete it") from None
    if not frames:
        raise DatasetError(f"video {path} has no frames; delete it or pass another --real")
    return frames


class RealFrames:
    """Real frames from image files (read on demand) and videos (sampled once, kept in memory)."""

    def __init__(self, paths, cfg: DataConfig, on_video=None, videos: list[str] | None = None,
                 exclude_videos: list[str] | None = None):
        images, video_files = find_real_files(paths, videos, exclude_videos)
        self.cfg = cfg
        self.images = images
        self.frames: list[np.ndarray] = []
        self.frame_names: list[str] = []
        # Videos are decoded once and kept at training scale (slightly above load_size so
        # the random up-scaling does not blur them).
        keep = int(math.ceil((cfg.load_size or cfg.native_short or 256) * max(cfg.scale_range)))
        for v in video_files:
            fr = read_video_frames(v, cfg.video_fps, keep, cfg.trim_black)
            self.frames += fr
            self.frame_names += [f"{v}#{i}" for i in range(len(fr))]
            if on_video is not None:
                on_video(v, len(fr))

    def __len__(self) -> int:
        return len(self.images) + len(self.frames)

    def videos(self) -> list[str]:
        """The distinct videos these frames come from (recorded by the translator: which real
        videos it saw, so a held-out evaluation can check it never saw its test videos)."""
        return videos_seen(self.frame_names + [str(p) for p in self.images])

    def name(self, i: int) -> str:
        return str(self.images[i]) if i < len(self.images) else self.frame_names[i - len(self.images)]

    def get(self, i: int) -> np.ndarray:
        if i < len(self.images):
            return trim_black_borders(_read(self.images[i], "real frame"), self.cfg.trim_black)
        return self.frames[i - len(self.images)]
