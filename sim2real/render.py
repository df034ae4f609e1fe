"""Headless entry point, the same job as ``sim2real render``:

    blender -b -P sim2real/render.py -- --preset default --out DIR --count N --seed S
    python sim2real/render.py --preset default --out DIR --count N      (with the bpy module)
    blender my_scene.blend -b -P sim2real/render.py -- --out DIR --count N   (see docs/rendering.md)

Uses argparse, not click, so it runs in Blender's bundled Python with nothing installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _argv() -> list[str]:
    argv = sys.argv
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="render.py", description="Render a labelled laparoscopy data set.")
    p.add_argument("--preset", default=None, help="preset name in scenes/ or a .toml path (default: default)")
    p.add_argument("--out", required=True, help="output data-set folder")
    p.add_argument("--count", type=int, required=True, help="number of samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="first sample index")
    p.add_argument("--shard", default=None, help="i/n: render only indices with index %% n == i")
    p.add_argument("--workers", type=int, default=1, help="render processes")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a preset field, e.g. render.samples=8")
    p.add_argument("--blend", default=None, help="render the labelled objects of this .blend (implied when Blender "
                   "was started with a .blend file); see sim2real/blender/user_scene.py")
    return p


def main(argv: list[str] | None = None) -> int:
    inside_blender = "bpy" in sys.modules  # a Blender binary preloads bpy; the bpy module does not
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:  # Blender's Python does not have sim2real installed
        sys.path.insert(0, str(root))
    from sim2real.errors import Sim2RealError, one_line
    from sim2real.rendering.job import (PARENT_ENV, RenderJob, die_with_parent, parse_set, parse_shard, run,
                                  run_user_scene)
    from sim2real.progress import Progress

    args = build_parser().parse_args(_argv() if argv is None else argv)
    if os.environ.get(PARENT_ENV, "").isdigit():  # started by `sim2real render --blender`: end with it
        die_with_parent(int(os.environ[PARENT_ENV]))
    try:
        if args.workers > 1 and inside_blender:
            raise Sim2RealError("--workers needs the bpy module; with a Blender binary run "
                                "`sim2real render --blender PATH --workers N`, which starts N Blender processes")
        job = RenderJob(preset=args.preset or "default", out=args.out, count=args.count, seed=args.seed,
                        start=args.start, shard=parse_shard(args.shard), overrides=parse_set(args.set))
        from sim2real.blender.user_scene import opened_blend

        with Progress(len(job.indices()), "render", unit="samples") as bar:
            if args.blend or opened_blend():  # a hand-made, labelled scene (the add-on's labels)
                summary = run_user_scene(job, args.blend, args.preset, workers=args.workers, progress=bar)
            else:
                summary = run(job, workers=args.workers, progress=bar)
        print(f"rendered {summary['rendered']}, skipped {summary['skipped']} already done -> {args.out}",
              file=sys.stderr)
        return 0
    except Sim2RealError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
