"""Seconds per training step, this tree against an earlier commit, interleaved in one run.

    python benchmarks/bench_step.py [--baseline 8654915] [--preset paper] [--size 128x224]
                                    [--batch 1] [--threads 1] [--steps 2] [--rounds 2] [--out step.json]

The baseline is the package of ``--baseline`` (a git revision; default: the commit before
the step was made faster), extracted with ``git archive`` into a temporary folder. Each
round runs one fresh process per tree, alternating (baseline, current, baseline, ...),
so both see the same machine load; each process builds the trainer on synthetic images
held in memory (no disk I/O), runs one warm-up step, then times ``--steps`` steps.
Prints seconds per step (median over all timed steps) per tree and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "8654915"  # before issue 11's step changes


def worker(args) -> None:
    import numpy as np
    import torch

    from sim2real.translate.config import load_config
    from sim2real.translate.trainer import Trainer

    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))

    class Synthetic:
        def __init__(self, seed):
            rng = np.random.default_rng(seed)
            self.images = [rng.integers(0, 256, (int(h * 1.25), int(w * 1.25), 3), dtype=np.uint8) for _ in range(4)]

        def __len__(self):
            return len(self.images)

        def get(self, i):
            return self.images[i]

    cfg = load_config(args.preset, {"data": {"load_size": h, "crop": [h, w]}, "train": {"batch_size": args.batch}})
    tr = Trainer(cfg, Synthetic(0), Synthetic(1), None, args.device)
    times = []
    for i in range(args.steps + 1):
        t0 = time.perf_counter()
        out = tr.train_step()
        float(out["g"])  # wait for the step (a GPU runs ahead otherwise)
        if i:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"s_per_step": times}))


def extract(rev: str, dest: Path) -> Path:
    """The ``sim2real`` package at ``rev`` under ``dest``."""
    tar = dest / "src.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(REPO), "archive", rev, "sim2real"], stdout=f, check=True)
    with tarfile.open(tar) as t:
        t.extractall(dest, filter="data")
    return dest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--size", default="128x224", help="training crop HxW (load size = H)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per process (after one warm-up)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the figures as JSON")
    ap.add_argument("--concurrent", action="store_true",
                    help="run the two trees at the same time (needs 2 free cores; fairer on a shared machine)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    times: dict[str, list[float]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": extract(args.baseline, Path(tmp)), "current": REPO}
        cmd = [sys.executable, __file__, "--worker", "--preset", args.preset, "--size", args.size, "--batch",
               str(args.batch), "--threads", str(args.threads), "--device", args.device, "--steps", str(args.steps)]
        def env(root):
            return {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": str(args.threads),
                    "MKL_NUM_THREADS": str(args.threads)}

        def record(r, name, stdout):
            t = json.loads(stdout.strip().splitlines()[-1])["s_per_step"]
            times[name] += t
            print(f"round {r + 1} {name:<8} " + " ".join(f"{v:.2f}" for v in t) + " s/step", flush=True)

        for r in range(args.rounds):
            if args.concurrent:  # both at once: whatever else loads the machine loads both alike
                procs = {name: subprocess.Popen(cmd, env=env(root), stdout=subprocess.PIPE, text=True)
                         for name, root in trees.items()}
                for name, p in procs.items():
                    out, _ = p.communicate()
                    if p.returncode:
                        raise SystemExit(f"{name} worker failed ({p.returncode})")
                    record(r, name, out)
            else:
                for name, root in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                    res = subprocess.run(cmd, env=env(root), capture_output=True, text=True, check=True)
                    record(r, name, res.stdout)
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {"concurrent": args.concurrent, "preset": args.preset, "size": args.size, "batch": args.batch, "threads": args.threads,
           "device": args.device, "baseline": args.baseline, "s_per_step": times, "median": med,
           "speedup": med["baseline"] / med["current"]}
    print(f"{args.preset} {args.size} batch {args.batch}, {args.threads} thread(s), {args.device}: "
          f"baseline {args.baseline} {med['baseline']:.2f} s/step, current {med['current']:.2f} s/step, "
          f"speed-up {res['speedup']:.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
