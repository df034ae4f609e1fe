"""Data time as a share of training step time, with and without DataLoader workers.

    python benchmarks/bench_data.py [--preset small] [--steps 20] [--workers 0,1,2] [--threads 1]

Trains ``--preset`` on renders and real frames read from disk as a run reads them:
synthetic 256x144 renders (PNG, labels included) and the shared Endoscapes frames
(854x480 JPEG, ``../shared/data/real/endoscapes-dev``) when present, else synthetic
854x480 JPEGs. For each ``--workers`` value it times, per step, the wait for the next
batch (decoding, border trimming, augmentation; prepared ahead by the workers when there
are any) and the step itself, and prints the wait's share of the total.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic import synthetic_real_frames, synthetic_renders  # noqa: E402

SHARED_REAL = HERE.parent.parent / "shared" / "data" / "real" / "endoscapes-dev" / "images"


def measure(preset: str, renders: Path, real: Path, workers: int, steps: int, warmup: int) -> dict:
    from sim2real.translate.batches import iterate_batches
    from sim2real.translate.config import load_config
    from sim2real.translate.data import RealFrames, SimImages
    from sim2real.translate.trainer import Trainer

    cfg = load_config(preset, {"train": {"workers": workers}})
    tr = Trainer(cfg, SimImages(renders), RealFrames([real], cfg.data), None, "cpu")
    it = iterate_batches(tr.batches(), 0, warmup + steps, workers, prefetch=cfg.train.prefetch)
    waits, computes = [], []
    try:
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            b = next(it)
            t1 = time.perf_counter()
            float(tr.train_step(b)["g"])
            t2 = time.perf_counter()
            if i >= warmup:
                waits.append(t1 - t0)
                computes.append(t2 - t1)
    finally:
        it.close()
    wait, comp = sum(waits), sum(computes)
    return {"workers": workers, "steps": steps, "data_s_per_step": wait / steps, "step_s": comp / steps,
            "data_share": wait / (wait + comp), "median_wait_s": statistics.median(waits)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--workers", default="0,2")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        renders = synthetic_renders(Path(tmp) / "renders", 32, 256, 144)
        real = SHARED_REAL if SHARED_REAL.is_dir() else synthetic_real_frames(Path(tmp) / "real", 32, 854, 480)
        res = {"preset": args.preset, "threads": args.threads, "real": str(real), "runs": []}
        for w in (int(v) for v in args.workers.split(",")):
            r = measure(args.preset, renders, real, w, args.steps, args.warmup)
            res["runs"].append(r)
            print(f"{args.preset}, {w} workers: data {r['data_s_per_step'] * 1e3:.1f} ms/step, step "
                  f"{r['step_s'] * 1e3:.0f} ms -> data share {r['data_share']:.1%}", flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
