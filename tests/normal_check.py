"""Normals derived from depth and K alone, to check label normals against (no sim2real code)."""

import numpy as np


def depth_normals(depth: np.ndarray, k: np.ndarray, instances: np.ndarray, agree_deg: float = 8.0):
    """(H, W, 3) camera-frame normals from planar depth, and where they are trustworthy.

    A pixel counts when its four neighbours lie on the same instance and the four
    one-sided normals (right/down, down/left, left/up, up/right) agree within
    ``agree_deg``: that excludes depth discontinuities and creases but keeps flat and
    smooth surfaces, where a wrongly shaded normal would show.
    """
    h, w = depth.shape
    yy, xx = np.mgrid[0:h, 0:w]
    rays = np.stack([(xx + 0.5 - k[0, 2]) / k[0, 0], (yy + 0.5 - k[1, 2]) / k[1, 1], np.ones((h, w))], -1)
    z = np.where(np.isfinite(depth), depth, np.nan)
    p = rays * z[..., None]
    c = p[1:-1, 1:-1]
    r, l_, d, u = p[1:-1, 2:] - c, p[1:-1, :-2] - c, p[2:, 1:-1] - c, p[:-2, 1:-1] - c
    with np.errstate(invalid="ignore", divide="ignore"):
        one_sided = [np.cross(r, d), np.cross(d, l_), np.cross(l_, u), np.cross(u, r)]
        one_sided = [n / np.linalg.norm(n, axis=-1, keepdims=True) for n in one_sided]
        central = np.cross(p[1:-1, 2:] - p[1:-1, :-2], p[2:, 1:-1] - p[:-2, 1:-1])
        central /= np.linalg.norm(central, axis=-1, keepdims=True)
    ok = np.all(np.isfinite(central), -1)
    for n in one_sided:
        ok &= np.sum(n * central, -1) > np.cos(np.deg2rad(agree_deg))
    inst = instances
    centre = inst[1:-1, 1:-1]
    for nb in (inst[1:-1, 2:], inst[1:-1, :-2], inst[2:, 1:-1], inst[:-2, 1:-1]):
        ok &= nb == centre
    ok &= centre > 0
    out = np.zeros((h, w, 3))
    valid = np.zeros((h, w), bool)
    out[1:-1, 1:-1] = np.where(ok[..., None], central, 0)
    valid[1:-1, 1:-1] = ok
    out *= -np.sign(np.sum(out * rays, -1, keepdims=True) + 1e-30)  # face the camera
    return out, valid


def erode(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """Binary erosion with a 3x3 square, ``steps`` times (edges count as outside)."""
    m = mask.copy()
    for _ in range(steps):
        p = np.pad(m, 1)
        m = np.ones_like(m)
        for dy in range(3):
            for dx in range(3):
                m &= p[dy:dy + m.shape[0], dx:dx + m.shape[1]]
    return m


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(np.sum(a * b, -1), -1, 1)))


def class_normal_errors(arrays: dict, k: np.ndarray, erode_px: int = 1) -> dict[int, np.ndarray]:
    """Per class id: angles (deg) between label and depth-derived normals on its smooth interior."""
    nd, valid = depth_normals(arrays["depth"], k, arrays["instances"])
    seg = arrays["segmentation"]
    out = {}
    for cid in np.unique(seg):
        if cid == 0:
            continue
        m = erode(seg == cid, erode_px) & valid
        out[int(cid)] = angle_deg(arrays["normals"][m], nd[m])
    return out
