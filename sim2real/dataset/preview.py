"""Contact sheets: image | segmentation overlay | depth | normals, one row per sample."""

from __future__ import annotations

import numpy as np

from .format import Dataset


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """Near = bright; no surface (inf) = black. Robust 2..98 percentile range."""
    finite = np.isfinite(depth)
    out = np.zeros(depth.shape + (3,), np.uint8)
    if not finite.any():
        return out
    lo, hi = np.percentile(depth[finite], [2, 98])
    t = np.clip((depth - lo) / max(hi - lo, 1e-9), 0, 1)
    g = (255 * (1 - t) ** 0.8).astype(np.uint8)
    out[..., 0] = g
    out[..., 1] = (g.astype(np.float32) * 0.85).astype(np.uint8)
    out[..., 2] = (g.astype(np.float32) * 0.6).astype(np.uint8)
    out[~finite] = 0
    return out


def colorize_normals(normals: np.ndarray) -> np.ndarray:
    """OpenCV camera-frame normals as RGB = (n * [1, -1, -1] + 1) / 2 (the usual 'normal map' look)."""
    n = normals * np.array([1, -1, -1], np.float32)
    out = ((n + 1) * 127.5).clip(0, 255).astype(np.uint8)
    out[np.all(normals == 0, axis=-1)] = 0
    return out


def overlay(image: np.ndarray, seg: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    colour = palette[seg].astype(np.float32)
    out = image.astype(np.float32) * (1 - alpha) + colour * alpha
    out[seg == 0] = image[seg == 0]
    return out.astype(np.uint8)


def contact_sheet(ds: Dataset, ids: list[str] | None = None, max_rows: int = 8, gap: int = 2) -> np.ndarray:
    """An (H, W, 3) uint8 sheet of up to ``max_rows`` samples (evenly spread over the set)."""
    all_ids = ds.ids()
    if ids is None:
        if len(all_ids) <= max_rows:
            ids = all_ids
        else:
            ids = [all_ids[int(round(k))] for k in np.linspace(0, len(all_ids) - 1, max_rows)]
    palette = ds.classes.palette()
    rows = []
    for sid in ids:
        s = ds.sample(sid)
        img = s.image()
        tiles = [img]
        for name, fn in (("segmentation", lambda: overlay(img, s.segmentation(), palette)),
                         ("depth", lambda: colorize_depth(s.depth())),
                         ("normals", lambda: colorize_normals(s.normals()))):
            try:
                tiles.append(fn())
            except (OSError, KeyError, ValueError):
                tiles.append(np.zeros_like(img))  # a translated set may lack a pass; keep the grid
        h = tiles[0].shape[0]
        sep = np.full((h, gap, 3), 255, np.uint8)
        row = tiles[0]
        for t in tiles[1:]:
            row = np.concatenate([row, sep, t], axis=1)
        rows.append(row)
    if not rows:
        raise ValueError("no samples to preview")
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    sheet = rows[0]
    for r in rows[1:]:
        sheet = np.concatenate([sheet, np.full((gap, width, 3), 255, np.uint8), r], axis=0)
    return sheet
