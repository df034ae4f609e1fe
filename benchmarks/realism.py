"""Colour realism of a render set against real frames: the figures of docs/results.md ("Renders against real frames").

    python benchmarks/realism.py --renders out/r256 --real ../shared/data/real/endoscapes-dev \
        [--map gallbladder=5,tool=6] [--sheet out/sheet.png] [--rows 6]

Prints per class the pooled mean CIELAB colour of renders and real frames, their ΔE
(CIE76) and lightness spreads, and the share of clipped pixels (a channel >= 250) inside
the field of view. ``--sheet`` writes a contact sheet, renders (left) beside real frames
(right); it holds real frames, so keep it under out/ and never commit it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def contact_sheet(render_root, real_images, rows: int, size=(256, 144)) -> np.ndarray:
    from PIL import Image

    from sim2real.dataset.format import open_dataset

    ds = open_dataset(render_root)
    reals = sorted(Path(real_images).glob("*.jpg"))
    pick_r = np.linspace(0, len(ds) - 1, rows * 2).astype(int)
    pick_t = np.linspace(0, len(reals) - 1, rows * 2).astype(int)

    def tile(img):
        return np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))

    out_rows = []
    for r in range(rows):
        cells = [tile(ds[int(pick_r[2 * r + j])].image()) for j in range(2)]
        cells += [tile(np.asarray(Image.open(reals[int(pick_t[2 * r + j])]).convert("RGB"))) for j in range(2)]
        gap = np.full((size[1], 6, 3), 255, np.uint8)
        out_rows.append(np.concatenate([cells[0], cells[1], gap, cells[2], cells[3]], 1))
    return np.concatenate(out_rows, 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--renders", required=True)
    ap.add_argument("--real", required=True, help="folder with images/ and masks/")
    ap.add_argument("--map", default="gallbladder=5,tool=6")
    ap.add_argument("--sheet", default=None)
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from sim2real.appearance.stats import compare, real_stats, render_stats
    from sim2real.segment.data import parse_mapping

    mapping = parse_mapping(args.map, "--map", True)
    real = real_stats(Path(args.real) / "images", Path(args.real) / "masks", mapping)
    ren = render_stats(args.renders, list(mapping))
    cmp = compare(ren, real)
    print(f"renders {args.renders}: {ren.images} images; real {args.real}: {real.images} frames")
    for c in mapping:
        rj, tj = ren.to_json()["classes"][c], real.to_json()["classes"][c]
        print(f"  {c:12s} ΔE76 {cmp['classes'][c]['delta_e76']}  render Lab {rj['lab_mean']} (sRGB {rj['srgb_mean']}, "
              f"L std {rj['lab_std'] and rj['lab_std'][0]})  real Lab {tj['lab_mean']} (sRGB {tj['srgb_mean']}, "
              f"L std {tj['lab_std'][0]})")
    print(f"  clipped inside FOV: renders {100 * cmp['clipped_share_render']:.2f} %, "
          f"real {100 * cmp['clipped_share_real']:.2f} %")
    if args.json:
        Path(args.json).write_text(json.dumps({"render": ren.to_json(), "real": real.to_json(), "compare": cmp}))
    if args.sheet:
        from sim2real.io import write_png

        write_png(args.sheet, contact_sheet(args.renders, Path(args.real) / "images", args.rows))
        print(f"contact sheet -> {args.sheet}")


if __name__ == "__main__":
    main()
