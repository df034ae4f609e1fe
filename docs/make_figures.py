"""Make the README's pictures: a preview sheet of a few renders and a render -> variants grid.

    python docs/make_figures.py                                  # colour-transfer variants
    python docs/make_figures.py --checkpoint runs/t/translator.pt  # a trained translator's

Renders --count samples of a preset with a fixed seed (`sim2real render`), draws their
preview sheet (`sim2real preview`), translates them into K variants (`sim2real translate`,
`--method colour` unless a translator checkpoint is given) and writes small PNGs to
docs/images/: preview.png and variants.png, plus variants.txt naming the method that made
the variants (the README's caption says the same). Intermediate data sets go to --work
(a temporary folder by default), never into the repository. The real frames are used
only for their colour statistics (colour transfer); no real pixel reaches the pictures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REAL = ROOT.parent / "shared" / "data" / "real" / "endoscapes-dev" / "images"


def sim2real(*args: str) -> None:
    """Run one sim2real command in a fresh process (as a user would); stop on failure."""
    cmd = [sys.executable, "-m", "sim2real.cli", *args]
    print("+ sim2real " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def save_small(img: Image.Image, path: Path, width: int) -> None:
    """Downsize to `width` pixels wide and write a palette PNG (small enough to commit)."""
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img = img.convert("RGB")
    palette = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT)  # the palette only
    img = img.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)  # dithered: no banding
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    img.save(tmp, format="PNG", optimize=True)
    tmp.replace(path)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
          f"({img.width}x{img.height}, {path.stat().st_size / 1024:.0f} KiB)")


def variants_grid(renders: Path, variants: Path, rows: int, k: int, gap: int = 6) -> Image.Image:
    """Rows of: render | its K variants (white gaps between tiles)."""
    from sim2real.dataset import open_dataset

    src, out = open_dataset(renders), open_dataset(variants)
    lines = []
    for sample in list(src)[:rows]:
        tiles = [sample.image()] + [out.sample(f"{sample.id}_style_{j:02d}").image() for j in range(k)]
        h = tiles[0].shape[0]
        line = [tiles[0], np.full((h, 5 * gap, 3), 255, np.uint8)]  # a wider gap after the render
        for j, t in enumerate(tiles[1:]):
            line += ([np.full((h, gap, 3), 255, np.uint8)] if j else []) + [t]
        lines.append(np.concatenate(line, axis=1))
    w = lines[0].shape[1]
    grid = []
    for i, line in enumerate(lines):
        if i:
            grid.append(np.full((gap, w, 3), 255, np.uint8))
        grid.append(line)
    return Image.fromarray(np.concatenate(grid, axis=0))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--count", type=int, default=6, help="renders (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="452x256", help="render resolution WxH")
    p.add_argument("-k", type=int, default=4, help="variants per render in the grid")
    p.add_argument("--grid-rows", type=int, default=3, help="renders shown in the variants grid")
    p.add_argument("--checkpoint", help="translator checkpoint; without it: --method colour")
    p.add_argument("--real", default=str(DEFAULT_REAL), help="real frames for --method colour")
    p.add_argument("--work", help="folder for the intermediate data sets (default: a temporary one)")
    p.add_argument("--images", default=str(ROOT / "docs" / "images"), help="where the PNGs go")
    a = p.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="sim2real_figures_") as tmp:
        work = Path(a.work) if a.work else Path(tmp)
        renders, variants, images = work / "renders", work / "variants", Path(a.images)
        sim2real("render", "--preset", a.preset, "--out", str(renders), "--count", str(a.count),
                 "--seed", str(a.seed), "--set", f"render.resolution=[{w},{h}]", "--no-preview")
        sheet = work / "preview.png"
        sim2real("preview", str(renders), "--out", str(sheet), "--rows", str(min(a.count, 4)))
        if a.checkpoint:
            method = f"the translator {Path(a.checkpoint).name}"
            sim2real("translate", "--checkpoint", a.checkpoint, "--data", str(renders),
                     "--out", str(variants), "-k", str(a.k), "--seed", str(a.seed))
        else:
            method = "colour transfer (translate --method colour), not the trained translator"
            sim2real("translate", "--method", "colour", "--real", a.real, "--data", str(renders),
                     "--out", str(variants), "-k", str(a.k), "--seed", str(a.seed))
        save_small(Image.open(sheet), images / "preview.png", width=900)
        grid = variants_grid(renders, variants, min(a.grid_rows, a.count), a.k)
        save_small(grid, images / "variants.png", width=900)
        (images / "variants.txt").write_text(
            f"variants made by {method}; preset {a.preset}, seed {a.seed}, {w}x{h}, k={a.k}\n")


if __name__ == "__main__":
    main()
