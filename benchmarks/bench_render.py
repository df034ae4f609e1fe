"""Render speed and memory: prints the figures quoted in the README.

    python benchmarks/bench_render.py                      # speed at 452x256 + memory run
    python benchmarks/bench_render.py --samples 12 --memory-samples 200

Speed: per labelled sample (median over --samples, after one warm-up) at the default
preset: total wall time, the bare Cycles time of the image render, the label render,
and everything else (sampling, building, post-processing, writing).
Memory: resident set size after 10 and after --memory-samples samples in one process
(small images: growth comes from datablocks, not pixels).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="default")
    ap.add_argument("--samples", type=int, default=12)
    ap.add_argument("--memory-samples", type=int, default=200)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="preset override, as in sim2real render")
    args = ap.parse_args()

    from sim2real.pipeline import RenderJob, parse_set, render_indices

    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        job = RenderJob(args.preset, str(Path(tmp) / "speed"), args.samples + 1, seed=123,
                        overrides=parse_set(args.set))
        last = [time.perf_counter()]

        def on_done(i, t):
            now = time.perf_counter()
            rows.append({**t, "total_s": now - last[0]})
            last[0] = now

        render_indices(job, job.indices(), on_done=on_done)
        rows = rows[1:]  # warm-up (kernel load) excluded
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        w, h = job.config()["render"]["resolution"]
        cfg = job.config()["render"]
        image_only = med["image_s"]
        labels = med["labels_s"] + med["postprocess_s"]
        other = med["total_s"] - med["image_s"] - med["labels_s"]
        print(f"preset {args.preset}: {w}x{h}, {cfg['samples']} spp, denoise={cfg['denoise']}, "
              f"max_bounces={cfg['max_bounces']}, {len(rows)} samples (median)")
        print(f"  seconds per labelled sample (wall):      {med['total_s']:.3f}")
        print(f"  bare Cycles image render:                {image_only:.3f}")
        print(f"  label render (1 spp, pixel-centred):     {med['labels_s']:.3f}")
        print(f"  post-processing (passes -> arrays):      {med['postprocess_s']:.3f}")
        print(f"  sampling + build + writing files:        {other:.3f}")
        print(f"  extra cost of labels over the image:     {100 * labels / image_only:.1f} %")
        print(f"  pipeline overhead over bare Cycles time: "
              f"{100 * (med['total_s'] - image_only - med['labels_s']) / (image_only + med['labels_s']):.1f} %")
        if args.skip_memory:
            return
        mem = {}
        job = RenderJob(args.preset, str(Path(tmp) / "mem"), args.memory_samples, seed=7,
                        overrides={"render.resolution": [128, 72], "render.samples": 1, "render.denoise": False})
        t0 = time.perf_counter()

        def on_mem(i, t):
            n = i + 1
            if n in (10, 50, 100, args.memory_samples):
                mem[n] = rss_mib()

        render_indices(job, job.indices(), on_done=on_mem)
        print(f"memory over {args.memory_samples} samples in one process (128x72, 1 spp; "
              f"{(time.perf_counter() - t0) / args.memory_samples:.2f} s/sample):")
        for n, m in mem.items():
            print(f"  RSS after {n:4d} samples: {m:7.1f} MiB")
        if 10 in mem and args.memory_samples in mem:
            print(f"  growth 10 -> {args.memory_samples}: {100 * (mem[args.memory_samples] / mem[10] - 1):+.1f} %")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
