"""Render time per labelled sample of this tree against an earlier commit, in one run.

    python benchmarks/compare_render.py --base fdbcacb                 # default preset, 452x256
    python benchmarks/compare_render.py --base fdbcacb --rounds 4 --count 5 --set render.samples=8
    python benchmarks/compare_render.py --base fdbcacb --preset full --base-preset default

The base commit is exported (``git archive``) to a temporary folder; each round renders
``--count`` samples (plus one warm-up that loads the Cycles kernels) with ``sim2real
render`` from each tree in turn, alternating which goes first, with the same seed,
preset, ``--set`` overrides and thread count. Both trees draw the same scenes where their
samplers agree, so the comparison is of the code, under the same machine load.

Per sample: wall time from one sample's commit to the next (everything: sampling,
building, both renders, post-processing, writing), and CPU-bound parts from each
sample's meta.json (``render.seconds``). Prints medians per tree and the median ratio of
this tree over the base.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("sample_s", "build_s", "image_s", "labels_s", "postprocess_s")


def export(ref: str, dest: Path) -> Path:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def render(tree: Path, out: Path, args, preset: str) -> list[dict]:
    cmd = [sys.executable, "-m", "sim2real.cli", "render", "--out", str(out), "--count", str(args.count + 1),
           "--seed", str(args.seed), "--preset", preset, "--no-preview", "--set", f"render.threads={args.threads}"]
    for s in args.set:
        cmd += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(cmd, check=True, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metas = sorted((out / "samples").glob("*/meta.json"))
    rows, prev = [], None
    for m in metas:
        t = m.stat().st_mtime
        sec = json.loads(m.read_text())["render"]["seconds"]
        if prev is not None:  # the first sample (kernel load) only marks the start
            rows.append({"wall": t - prev, **{k: sec.get(k, 0.0) for k in PARTS}})
        prev = t
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="git commit to compare against")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--base-preset", default=None,
                    help="the base commit's preset (default: --preset; e.g. default when --preset is newer than it)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=4, help="timed samples per tree and round")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=2, help="Cycles threads of each render")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {"base": export(args.base, tmp / "base"), "this": ROOT}
        rows: dict[str, list[dict]] = {"base": [], "this": []}
        for r in range(args.rounds):
            order = ["base", "this"] if r % 2 == 0 else ["this", "base"]
            for name in order:
                preset = args.preset if name == "this" else (args.base_preset or args.preset)
                rows[name] += render(trees[name], tmp / f"{name}_{r}", args, preset)
                print(f"round {r + 1}/{args.rounds} {name}: {len(rows[name])} samples", file=sys.stderr)
    med = {n: {k: statistics.median(x[k] for x in v) for k in ("wall", *PARTS)} for n, v in rows.items()}
    print(f"preset {args.preset} (base: {args.base_preset or args.preset}) {' '.join(args.set)}; {args.rounds} rounds x {args.count} samples per tree, "
          f"{args.threads} Cycles threads; medians in seconds (base = {args.base})")
    print(f"  {'':34s} {'base':>8s} {'this':>8s} {'this/base':>10s}")
    for k in ("wall", *PARTS):
        name = "per labelled sample (wall, all)" if k == "wall" else k
        b, t = med["base"][k], med["this"][k]
        print(f"  {name:34s} {b:8.3f} {t:8.3f} {t / b if b else float('nan'):10.3f}")
    # sample i of round r is the same scene in both trees: pair them
    pairs = [t["wall"] / b["wall"] for b, t in zip(rows["base"], rows["this"])]
    print(f"  median of paired per-sample ratios (wall): {statistics.median(pairs):.3f}")


if __name__ == "__main__":
    main()
