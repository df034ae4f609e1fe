"""Small, sound data sets written through the real writer, for tests that need one
without rendering (translator, segmentation, reader, verify)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim2real.classes import DEFAULT_TABLE
from sim2real.dataset.format import DatasetWriter, class_pixel_counts, sample_id
from sim2real.io.exr import write_exr
from sim2real.io import write_json_atomic, write_png


def write_fake_render_dataset(root, n: int = 4, size=(64, 48), seed: int = 0) -> Path:
    """A render-kind data set of ``n`` samples of ``size`` (W, H) with blob-shaped labels."""
    w, h = size
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, {"kind": "render", "classes": DEFAULT_TABLE.to_json(), "config": {"fake": True}})
    yy, xx = np.mgrid[0:h, 0:w]
    f = w / 2 / np.tan(np.deg2rad(35.0))  # 70 degrees horizontal field of view
    for i in range(n):
        seg = np.full((h, w), 4, np.uint8)  # abdominal wall everywhere
        for cid in (1, 2, 3, 6, 7):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            r = rng.uniform(0.1, 0.3) * min(w, h)
            seg[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = cid
        seg[:2, :2] = 0  # a little background
        inst = seg.astype(np.uint16)
        base = DEFAULT_TABLE.palette()[seg].astype(np.float32)
        img = np.clip(base * rng.uniform(0.5, 1.0) + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        depth = np.where(seg > 0, 0.05 + 0.1 * rng.random((h, w)), np.inf).astype(np.float32)
        nz = np.where(seg[..., None] > 0, np.array([0, 0, -1.0], np.float32), 0)
        sid = sample_id(i)
        with writer.write_sample(sid) as d:
            write_png(d / "image.png", img)
            write_png(d / "segmentation.png", seg)
            write_png(d / "instances.png", inst)
            write_exr(d / "depth.exr", {"Z": depth})
            write_exr(d / "normals.exr", {"X": nz[..., 0], "Y": nz[..., 1], "Z": nz[..., 2]})
            meta = {"id": sid, "index": i, "seed": seed, "resolution": [w, h],
                    "camera": {"K": [[f, 0.0, w / 2], [0.0, f, h / 2], [0.0, 0.0, 1.0]],
                               "camera_to_world": np.eye(4).tolist()},
                    "class_pixel_counts": class_pixel_counts(seg, DEFAULT_TABLE),
                    "instances": [{"id": int(c), "class_id": int(c)} for c in np.unique(inst) if c]}
            write_json_atomic(d / "meta.json", meta)
    return Path(root)


def write_fake_real_folder(root, n: int = 6, size=(80, 60), videos: int = 3, seed: int = 0) -> Path:
    """A folder of real-like frames ``images/<video>_<frame>.jpg`` + ``masks/<same>.png``
    (endoscapes values: 5 gallbladder, 6 tool, 255 ignore)."""
    import imageio.v3 as iio

    w, h = size
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        stem = f"{i % videos + 1}_{1000 + i}"
        mask = np.zeros((h, w), np.uint8)
        mask[(xx - rng.uniform(0, w)) ** 2 + (yy - rng.uniform(0, h)) ** 2 < (0.25 * h) ** 2] = 5
        mask[int(h * 0.7):, int(w * 0.6):] = 6
        mask[:1, :] = 255
        img = np.clip(rng.normal(120, 30, (h, w, 3)) + (mask[..., None] == 5) * 40, 0, 255).astype(np.uint8)
        iio.imwrite(root / "images" / f"{stem}.jpg", img)
        write_png(root / "masks" / f"{stem}.png", mask)
    return root


def write_disc_real_folder(root, n: int = 3, videos=("v0", "v1", "v2")) -> Path:
    """Real-like frames ``root/images/<video>_<i>.png``: a textured disc of one colour per
    frame on a black border (the baselines' tests: a field of view and known colours)."""
    root = Path(root)
    (root / "images").mkdir(parents=True)
    h, w = 60, 96
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (0.45 * h) ** 2
    rng = np.random.default_rng(1)
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        base = np.array([[150, 60, 70], [120, 90, 60], [170, 110, 120]][i % 3], float)
        img[disc] = np.clip(base + rng.normal(0, 15, (disc.sum(), 3)), 13, 255).astype(np.uint8)
        write_png(root / "images" / f"{videos[i % len(videos)]}_{i:04d}.png", img)
    return root


def render_labelled(desc, out_dir):
    """Render one scene description with the Blender renderer; its arrays (image and labels)."""
    from sim2real.blender.renderer import BlenderRenderer

    r = BlenderRenderer()
    try:
        arrays, _ = r.render(desc, out_dir)
    finally:
        r.close()
    return arrays
