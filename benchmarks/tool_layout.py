"""Where instruments lie in the frame: renders against real frames.

For each frame with an instrument: the share of its tool pixels in each cell of a 3x3 grid,
and the direction (from the image centre) of the tool pixel farthest from the centre --
where instruments enter the view, since they reach in across the edge of the field of
view. Directions are binned into 8 sectors (E = the right edge, N = the top). A segmenter
trained on renders only learns from tools where the renders put them.

    python benchmarks/tool_layout.py --renders out/r160 --real ../shared/data/real/endoscapes-dev \
        [--videos runs/exp/split.json]    # only the training videos of an experiment's split
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np

SECTORS = ("E", "NE", "N", "NW", "W", "SW", "S", "SE")


def _mask_stats(tool: np.ndarray) -> tuple[np.ndarray, int] | None:
    h, w = tool.shape
    ys, xs = np.nonzero(tool)
    if len(ys) < 0.001 * h * w:
        return None
    grid = np.zeros((3, 3))
    np.add.at(grid, (np.minimum(ys * 3 // h, 2), np.minimum(xs * 3 // w, 2)), 1)
    # normalised coordinates (the frame as a square) so the aspect ratio does not bias angles
    u, v = (xs + 0.5) / w - 0.5, 0.5 - (ys + 0.5) / h
    far = np.argmax(u * u + v * v)
    ang = np.degrees(np.arctan2(v[far], u[far])) % 360
    return grid / grid.sum(), int(((ang + 22.5) % 360) // 45)


def _read(path):
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))


def layout(masks) -> dict:
    grids, sectors, n = [], np.zeros(8), 0
    for tool in masks:
        n += 1
        s = _mask_stats(tool)
        if s is None:
            continue
        grids.append(s[0])
        sectors[s[1]] += 1
    return {"frames": n, "with_tool": len(grids), "grid": np.mean(grids, 0) if grids else np.zeros((3, 3)),
            "sectors": sectors / max(1, sectors.sum())}


def render_masks(root):
    from sim2real.classes import INSTRUMENT_IDS

    for seg in sorted(glob.glob(os.path.join(root, "samples", "*", "segmentation.png"))):
        yield np.isin(_read(seg), INSTRUMENT_IDS)


def real_masks(root, videos=None):
    for m in sorted(glob.glob(os.path.join(root, "masks", "*.png"))):
        if videos is None or os.path.basename(m).split("_")[0] in videos:
            yield _read(m) == 6


def show(name, r):
    print(f"{name}: {r['with_tool']} of {r['frames']} frames with a tool")
    print("  tool pixels per 3x3 cell (rows top to bottom):")
    for row in r["grid"]:
        print("   " + " ".join(f"{x:5.2f}" for x in row))
    print("  entry sector: " + " ".join(f"{s} {x:.2f}" for s, x in zip(SECTORS, r["sectors"])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--renders", required=True, help="a rendered data set")
    ap.add_argument("--real", required=True, help="a folder with images/ and masks/ (tool = 6)")
    ap.add_argument("--videos", default=None,
                    help="only these real videos: a split.json of `sim2real experiment` (its train_videos) or "
                         "comma-separated ids")
    a = ap.parse_args()
    videos = None
    if a.videos:
        if a.videos.endswith(".json"):
            import json

            with open(a.videos) as fh:
                videos = set(json.load(fh)["train_videos"])
        else:
            videos = set(a.videos.split(","))
    rr, re_ = layout(render_masks(a.renders)), layout(real_masks(a.real, videos))
    show("renders", rr)
    show("real", re_)
    tv = 0.5 * np.abs(rr["sectors"] - re_["sectors"]).sum()
    print(f"entry-sector total variation distance renders vs real: {tv:.3f} (0 = same, 1 = disjoint)")


if __name__ == "__main__":
    main()
