"""What the translator benchmarks share: synthetic images and data sets (no downloads),
and the two translation timings. ``gpu_check.py`` and ``bench_translate.py`` import this
module; it imports neither."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np


class Synthetic:
    """Stands in for SimImages/RealFrames: smooth random uint8 images of one size, in memory
    (with blob labels for the semantic term)."""

    def __init__(self, w: int, h: int, n: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.images = [smooth_image(rng, w, h) for _ in range(n)]

    def __len__(self):
        return len(self.images)

    def get(self, i):
        return self.images[i]

    def get_labels(self, i):
        return (self.images[i][..., 0] // 32).astype(np.uint8)


def smooth_image(rng, w: int, h: int) -> np.ndarray:
    """Blobs of colour with a little noise: enough structure for MS-SSIM, no blank crops."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float32) + rng.uniform(40, 120, 3)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.4) * min(w, h)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(30, 250, 3)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def synthetic_renders(root: Path, n: int, w: int, h: int, seed: int = 0) -> Path:
    """A render-kind data set of ``n`` samples (image, segmentation, meta) written by the real writer,
    with a black border outside a circular field of view like the renderer's."""
    from sim2real.classes import DEFAULT_TABLE
    from sim2real.dataset.format import DatasetWriter, class_pixel_counts, sample_id
    from sim2real.io import write_json_atomic, write_png

    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, {"kind": "render", "classes": DEFAULT_TABLE.to_json(), "config": {"synthetic": True}})
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (0.55 * w) ** 2
    for i in range(n):
        seg = np.where(inside, 4, 0).astype(np.uint8)
        for cid in (1, 2, 3):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.3) * min(w, h)
            seg[((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) & inside] = cid
        img = smooth_image(rng, w, h)
        img[~inside] = 0
        sid = sample_id(i)
        with writer.write_sample(sid) as d:
            write_png(d / "image.png", img)
            write_png(d / "segmentation.png", seg)
            write_json_atomic(d / "meta.json", {"id": sid, "index": i, "seed": seed, "resolution": [w, h],
                                                "class_pixel_counts": class_pixel_counts(seg, DEFAULT_TABLE)})
    return root


def synthetic_real_frames(root: Path, n: int, w: int, h: int, seed: int = 1) -> Path:
    """``n`` real-like JPEG frames ``<video>_<frame>.jpg`` (4 videos) in ``root``."""
    import imageio.v3 as iio

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        iio.imwrite(root / f"{i % 4 + 1}_{1000 + i}.jpg", smooth_image(rng, w, h), quality=90)
    return root


def sync(dev) -> None:
    import torch

    if getattr(dev, "type", dev) == "cuda":
        torch.cuda.synchronize()


def translate_model_rate(cfg, size: tuple[int, int], k: int, batch: int, reps: int, device: str,
                         precision: str = "auto") -> dict:
    """variants/s of the model alone at ``size`` (w, h): K styles in one batched decoder call
    ("batched") vs one call per style ("looped"), under the translator's autocast rule."""
    import torch

    from sim2real.translate.device import autocast, autocast_dtype, pick_device
    from sim2real.translate.bilateral import make_sim_to_real

    dev = pick_device(device)
    model = make_sim_to_real(cfg.model).to(dev).eval().requires_grad_(False)
    w, h = size
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, h, w, generator=g) * 2 - 1).to(dev)
    styles = torch.randn(batch, k, cfg.model.style_dim, generator=g).to(dev)
    dtype = autocast_dtype(precision, dev)

    @torch.no_grad()
    def batched():
        with autocast(dev, dtype):
            return model.decode_multi(model.content(x), styles)

    @torch.no_grad()
    def looped():
        with autocast(dev, dtype):
            c = model.content(x)
            return [model.decode_multi(c, styles[:, j:j + 1]) for j in range(k)]

    out = {}
    for name, fn in (("batched", batched), ("looped", looped)):
        fn()
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync(dev)
        out[name] = reps * batch * k / (time.perf_counter() - t0)
    return out


def translate_job_rate(ckpt: Path, renders: Path, root: Path, k: int, batch: int, device: str,
                       io_threads: list[int], precision: str = "auto") -> dict:
    """variants/s of the whole job (read renders, decode, score, write PNGs and label links)
    with a trained or exported checkpoint, per number of I/O threads (median of repeats)."""
    from sim2real.dataset.format import open_dataset
    from sim2real.translate.inference import TranslateOptions, run_translation

    n = len(open_dataset(renders))
    # One warm-up translation (cuDNN autotuning, lazy init) into a folder of its own.
    run_translation(TranslateOptions(ckpt, renders, root / "warm", k=k, batch=batch, device=device, io_threads=0,
                                     precision=precision, shard=(0, max(1, n // batch))))
    rates: dict[int, list[float]] = {}
    for i, threads in enumerate(io_threads):  # repeat a setting to interleave: [0, 4, 0, 4]
        t0 = time.perf_counter()
        s = run_translation(TranslateOptions(ckpt, renders, root / f"out_{i}", k=k, batch=batch,
                                             device=device, io_threads=threads, precision=precision))
        rates.setdefault(threads, []).append(s["variants_written"] / (time.perf_counter() - t0))
    return {f"io_threads_{t}": statistics.median(v) for t, v in rates.items()}


def untrained_checkpoint(cfg, root: Path, device: str) -> Path:
    """An exported translator of untrained networks of ``cfg`` (for timing translation only)."""
    from sim2real.translate.inference import export
    from sim2real.translate.trainer import Trainer

    tr = Trainer(cfg, None, None, root / "run", device)
    tr.save()
    return export(root / "run" / "checkpoint.pt")
