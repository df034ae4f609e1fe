"""The colour-transfer baseline: renders take the colour statistics of real frames.

No training. Each variant picks a random real frame (seeded by ``(seed, render index,
variant)``) and gives the render, inside its field of view, that frame's per-channel mean
and standard deviation in CIELAB (Reinhard et al. 2001), measured inside the frame's own
field of view (its black border excluded). Pixels outside the render's field of view stay
black; labels are hard links (copies where links fail) to the render's files, byte for
byte. The output has the same layout as :func:`~sim2real.translate.inference.translate_dataset`'s.
"""

from __future__ import annotations


import numpy as np

from ..appearance.stats import REAL_FOV_LEVEL, lab_to_srgb8, real_fov, srgb8_to_lab
from ..dataset.format import missing_variants, open_renders, open_translation, variant_id
from ..errors import DatasetError, Sim2RealError
from ..io.videos import videos_seen
from .data import _read, find_real_files

REAL_BLACK = REAL_FOV_LEVEL  # real pixels whose brightest channel is at or below this are the black border
# Bound on the per-channel std ratio, so a nearly flat render region is not blown up.
MAX_GAIN = 4.0

def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) -> CIELAB float32 (..., 3) (D65; L in 0..100)."""
    return srgb8_to_lab(rgb, np.float32)


def lab_stats(img: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(2, 3): per-channel mean and std in CIELAB of the pixels where ``mask`` is true."""
    lab = rgb_to_lab(img if mask is None else img[mask]).reshape(-1, 3).astype(np.float64)
    if len(lab) == 0:
        raise ValueError("no pixels to measure")
    return np.stack([lab.mean(0), lab.std(0)])


def transfer(img: np.ndarray, target: np.ndarray, inside: np.ndarray | None = None) -> np.ndarray:
    """``img`` (uint8 (H, W, 3)) with the CIELAB mean/std ``target`` (2, 3) inside ``inside``.

    Pixels outside ``inside`` are returned unchanged.
    """
    inside = np.ones(img.shape[:2], bool) if inside is None else inside
    out = img.copy()
    if not inside.any():
        return out
    lab = rgb_to_lab(img[inside])
    mu, sd = lab.mean(0, dtype=np.float64), lab.std(0, dtype=np.float64)
    gain = np.minimum(target[1] / np.maximum(sd, 1e-6), MAX_GAIN)
    out[inside] = lab_to_srgb8((lab - mu) * gain + target[0])
    return out


def render_fov(sample, img: np.ndarray) -> np.ndarray:
    """Bool (H, W): a render's pixels inside its field of view (not pure black labelled background)."""
    black = img.max(axis=2) == 0
    seg_path = sample.path("segmentation")
    if seg_path.is_file():
        black &= sample.segmentation() == 0
    return ~black


def usable_real_frames(paths, videos: list[str] | None = None, exclude_videos: list[str] | None = None,
                       method: str = "colour"):
    """Yield (path, frame at half resolution) of every real frame under ``paths`` (of the
    ``videos`` given / not of ``exclude_videos``) with a field of view of >= 64 pixels there;
    the selection every no-training method (``--method colour|fourier``) draws from."""
    images, videos = find_real_files(paths, videos, exclude_videos)
    if videos:
        raise DatasetError(f"--real for --method {method} takes images, not videos ({videos[0]}); "
                           f"extract frames first")
    found = False
    for p in images:
        img = _read(p, "real frame")[::2, ::2]  # selection and statistics need no full resolution
        if real_fov(img).sum() >= 64:
            found = True
            yield p, img
    if not found:
        raise DatasetError(f"every real frame under {', '.join(map(str, paths))} is black; pass real frames")


class RealColours:
    """CIELAB statistics of every real frame, measured once inside its field of view."""

    def __init__(self, paths, progress=None, videos: list[str] | None = None,
                 exclude_videos: list[str] | None = None):
        self.names, stats = [], []
        for p, img in usable_real_frames(paths, videos, exclude_videos, "colour"):
            self.names.append(str(p))
            stats.append(lab_stats(img, real_fov(img)))
        self.stats = np.stack(stats)

    def __len__(self) -> int:
        return len(self.stats)


def colour_dataset(data, real, out, k: int = 5, seed: int = 0, progress=None, shard=(0, 1)) -> dict:
    """Write ``k`` colour-transferred variants of every render of ``data`` under ``out``.

    ``real``: folders/files of real frames, or a :class:`RealColours` already measured.

    Resumable like :func:`translate_dataset`: finished variants are skipped; a rerun with
    other options into the same folder is refused. ``shard`` ``(i, n)``: only renders whose
    position % n == i (disjoint parts of one output folder, like the translator's).
    """
    if k < 1:
        raise Sim2RealError(f"-k must be >= 1, got {k}")
    src = open_renders(data, "colour-transfer")
    colours = real if isinstance(real, RealColours) else RealColours(real)
    settings = {"method": "colour", "space": "CIELAB", "k": k, "seed": seed, "real": colours.names,
                "max_gain": MAX_GAIN, "real_black": REAL_BLACK, "keep_fov": True}

    def variant(sample, img, inside, pick, j):
        st = colours.stats[pick]
        return transfer(img, st, inside), {"lab_mean": [round(float(v), 4) for v in st[0]],
                                           "lab_std": [round(float(v), 4) for v in st[1]]}

    return write_reference_variants(src, out, settings, colours.names, variant, k, seed, progress, shard)


def write_reference_variants(src, out, settings: dict, names: list[str], variant, k: int, seed: int,
                             progress=None, shard=(0, 1)) -> dict:
    """The writing loop of every no-training method: ``k`` variants of each render of ``src``.

    Variant ``j`` of the render at position ``index`` takes the real frame
    ``names[pick]``, ``pick`` drawn by ``numpy.random.default_rng([seed, index, 0xC0])``
    (the same frames for every method given the same real frames and seed);
    ``variant(sample, image, inside, pick, j)`` returns its uint8 image and extra record
    fields. Labels are hard links (copies where links fail); finished variants are skipped;
    ``shard`` ``(i, n)``: only renders whose position % n == i.
    """
    writer = open_translation(out, src, {**settings, "real_videos": videos_seen(names)}, settings)
    summary = {"sources": len(src), "variants_written": 0, "variants_skipped": 0, "links": 0, "copies": 0}
    todo, summary["variants_skipped"] = missing_variants(src, writer, k, shard)
    if progress is not None and summary["variants_skipped"]:
        progress.update(summary["variants_skipped"])
    for index, sid in todo:
        vids = [variant_id(sid, j) for j in range(k)]
        sample = src.sample(sid)
        img = sample.image()
        inside = render_fov(sample, img)
        rng = np.random.default_rng([int(seed), int(index), 0xC0])
        picks = rng.integers(len(names), size=k)
        for j, vid in enumerate(vids):
            if writer.has(vid):
                summary["variants_skipped"] += 1
                continue
            y, extra = variant(sample, img, inside, int(picks[j]), j)
            record = {"source_id": sample.id, "style_index": j, "method": settings["method"],
                      "style_origin": f"reference:{names[picks[j]]}", **extra, "seed": seed}
            counts = writer.write_variant(sample, vid, y, record)
            summary["links"] += counts["links"]
            summary["copies"] += counts["copies"]
            summary["variants_written"] += 1
        if progress is not None:
            progress.update(k)
    summary["out"] = str(out)
    return summary
