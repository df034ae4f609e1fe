"""Fields of view of real laparoscopic frames: full frame, or a lit circle on black.

    python benchmarks/fov_stats.py ../shared/data/real/endoscapes-dev/images
    python benchmarks/fov_stats.py FOLDER --per-frame        # one line per frame too

Per frame: is there a black border (at least two of the four corners are flat and dark),
and if so the circle fitted to the edge of the lit region, as the preset fields take it:
radius / image diagonal (``render.fov_mask_radius``) and the centre's offset from the
image centre / image size (``render.fov_mask_offset``). The circle may be taller than the
frame (clipped at the top and bottom); its radius is then still the circle's.

The lit region is "brighter than the border's black level + 12" (max over channels); its
edge points are the first and last lit pixel of every row and column that do not touch
the image side. A least-squares circle is fitted to them, then refitted without the
points off it by more than 2.5 robust standard deviations (dark tissue near the edge,
overlays printed on the border). Blank frames (almost nothing lit) are counted, not fitted.
Figures are per frame and per video (video = file name before the first ``_``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

CORNER = 10  # corner patch size, pixels
DARK_MEAN, DARK_STD = 40.0, 4.0  # a border corner: dark and flat (JPEG black is 0..20)
LIT_MARGIN = 12.0  # lit = brighter than the black level by this much


def _load(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def fit_circle(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (Kasa) circle through points: (cx, cy, r)."""
    a = np.stack([x, y, np.ones_like(x)], 1)
    b = x * x + y * y
    (p, q, s), *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = p / 2, q / 2
    return float(cx), float(cy), float(np.sqrt(max(s + cx * cx + cy * cy, 0.0)))


def _edge_points(lit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = lit.shape
    xs, ys = [], []
    rows = np.flatnonzero(lit.any(1))
    for y in rows:
        idx = np.flatnonzero(lit[y])
        for x in (idx[0], idx[-1] + 1):  # the boundary between the last dark and first lit pixel
            if 2 <= x <= w - 2:
                xs.append(float(x))
                ys.append(y + 0.5)
    cols = np.flatnonzero(lit.any(0))
    for x in cols:
        idx = np.flatnonzero(lit[:, x])
        for y in (idx[0], idx[-1] + 1):
            if 2 <= y <= h - 2:
                xs.append(x + 0.5)
                ys.append(float(y))
    return np.asarray(xs), np.asarray(ys)


def measure(img: np.ndarray) -> dict:
    """The field of view of one frame (H, W, 3 uint8): kind 'full', 'circle' or 'blank'."""
    m = img.astype(np.float32).max(-1)
    h, w = m.shape
    c = CORNER
    # skip the first/last two columns and rows: some recorders leave a bright line there
    patches = [m[2:2 + c, 2:2 + c], m[2:2 + c, w - 2 - c:w - 2], m[h - 2 - c:h - 2, 2:2 + c],
               m[h - 2 - c:h - 2, w - 2 - c:w - 2]]
    dark = [p for p in patches if p.mean() < DARK_MEAN and p.std() < DARK_STD]
    black = float(np.median([p.mean() for p in dark])) if dark else float(np.percentile(m, 1))
    lit = m > black + LIT_MARGIN
    out = {"width": w, "height": h, "lit_fraction": float(lit.mean())}
    if lit.mean() < 0.05:
        return {**out, "kind": "blank"}
    if len(dark) < 2:
        return {**out, "kind": "full"}
    xs, ys = _edge_points(lit)
    if len(xs) < 20:
        return {**out, "kind": "full"}
    keep = np.ones(len(xs), bool)
    for _ in range(3):
        cx, cy, r = fit_circle(xs[keep], ys[keep])
        res = np.hypot(xs - cx, ys - cy) - r
        sd = 1.4826 * np.median(np.abs(res[keep])) + 0.5
        keep = np.abs(res) < 2.5 * sd
    diag = float(np.hypot(w, h))
    return {**out, "kind": "circle", "cx": cx, "cy": cy, "radius": r, "radius_diag": r / diag,
            "offset_x": (cx - w / 2) / w, "offset_y": (cy - h / 2) / h,
            "clipped": bool(cy - r < 0 or cy + r > h), "inliers": float(keep.mean())}


def _q(v, qs=(0, 5, 25, 50, 75, 95, 100)) -> str:
    return " ".join(f"p{q}={np.percentile(v, q):.3f}" for q in qs)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--per-frame", action="store_true")
    args = ap.parse_args(argv)
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        sys.exit(f"{args.folder}: no .jpg/.png images")
    frames = {}
    for p in files:
        frames[p.name] = r = measure(_load(p))
        if args.per_frame:
            extra = "" if r["kind"] != "circle" else (
                f" r/diag={r['radius_diag']:.3f} off=({r['offset_x']:+.3f},{r['offset_y']:+.3f})"
                f"{' clipped' if r['clipped'] else ''} inliers={r['inliers']:.2f}")
            print(f"{p.name}: {r['kind']}{extra}")
    kinds = defaultdict(int)
    for r in frames.values():
        kinds[r["kind"]] += 1
    judged = [r for r in frames.values() if r["kind"] != "blank"]
    circ = [r for r in judged if r["kind"] == "circle"]
    print(f"{len(files)} frames: {kinds['circle']} circle, {kinds['full']} full frame, {kinds['blank']} blank")
    summary = {"frames": len(files), **dict(kinds)}
    if judged:
        summary["full_frame_share"] = kinds["full"] / len(judged)
        print(f"full-frame share (non-blank frames): {summary['full_frame_share']:.3f}")
    by_video = defaultdict(list)
    for name, r in frames.items():
        if r["kind"] != "blank":
            by_video[name.split("_")[0]].append(r)
    vids = {}
    for v, rs in sorted(by_video.items(), key=lambda kv: (len(kv[0]), kv[0])):
        cs = [r for r in rs if r["kind"] == "circle"]
        kind = "circle" if len(cs) * 2 > len(rs) else "full"
        vids[v] = {"kind": kind, "frames": len(rs)}
        if kind == "circle":
            vids[v].update({k: statistics.median(r[k] for r in cs) for k in ("radius_diag", "offset_x", "offset_y")})
            vids[v]["clipped"] = sum(r["clipped"] for r in cs) * 2 > len(cs)
    nfull = sum(v["kind"] == "full" for v in vids.values())
    print(f"{len(vids)} videos: {len(vids) - nfull} circle, {nfull} full frame (share {nfull / max(len(vids), 1):.3f})")
    summary["videos"] = vids
    if circ:
        rd = np.array([r["radius_diag"] for r in circ])
        ox = np.array([r["offset_x"] for r in circ])
        oy = np.array([r["offset_y"] for r in circ])
        print(f"circle frames: radius/diagonal {_q(rd)}")
        print(f"circle frames: centre offset x/width {_q(ox)}; |x| p95={np.percentile(np.abs(ox), 95):.3f}")
        print(f"circle frames: centre offset y/height {_q(oy)}; |y| p95={np.percentile(np.abs(oy), 95):.3f}")
        print(f"circle frames clipped at top/bottom: {np.mean([r['clipped'] for r in circ]):.3f}")
        cv = [v for v in vids.values() if v["kind"] == "circle"]
        vr = np.array([v["radius_diag"] for v in cv])
        print(f"circle videos (median per video): radius/diagonal {_q(vr)}")
        print("per video: " + ", ".join(
            f"{k}:{'full' if v['kind'] == 'full' else format(v['radius_diag'], '.3f')}" for k, v in vids.items()))
        summary.update(radius_diag=rd.tolist(), offset_x=ox.tolist(), offset_y=oy.tolist())
    return summary


if __name__ == "__main__":
    main()
