"""A GPU proof in minutes: training, compile, batched translation with and without file I/O,
and Cycles on the GPU, on one CUDA device, with no downloads.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--train-steps 200] [--budget 450]
    python benchmarks/gpu_check.py --smoke      # the same code paths on the CPU, tiny settings

Sections (each prints a row of one table; the table is also written as JSON):

1. train the paper preset (452x256 crops, batch 1) in bf16 for ``--train-steps`` steps on
   synthetic images: it/s after a warm-up, and whether every logged loss is finite;
2. the same with ``torch.compile`` (compile time reported apart);
3. translate K=5 at 452x256: the model alone, K styles decoded in one batched call vs
   one call per style (variants/s, no I/O); then the whole ``run_translation`` job on
   synthetic renders it writes itself (reading renders, writing PNG variants and label
   links), with PNG reads/writes in worker threads and without (variants/s with I/O);
4. Cycles on the GPU, if Blender (bpy) sees one: seconds per labelled sample (tiny set).

Without CUDA it prints why and exits 0 (``--smoke`` runs every section but Cycles and
compile on the CPU with tiny settings, to test the script itself). ``--budget`` seconds
bound the whole run: a section that would start past it is skipped and says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

TINY = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
        "data": {"load_size": 32, "crop": [32, 48]}}


class Synthetic:
    """Stands in for SimImages/RealFrames: smooth random uint8 images of one size, in memory."""

    def __init__(self, w: int, h: int, n: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.images = [smooth_image(rng, w, h) for _ in range(n)]

    def __len__(self):
        return len(self.images)

    def get(self, i):
        return self.images[i]


def smooth_image(rng, w: int, h: int) -> np.ndarray:
    """Blobs of colour with a little noise: enough structure for MS-SSIM, no blank crops."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float32) + rng.uniform(40, 120, 3)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.4) * min(w, h)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(30, 250, 3)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def synthetic_renders(root: Path, n: int, w: int, h: int, seed: int = 0) -> Path:
    """A render-kind data set of ``n`` samples (image, segmentation, meta) written by the real writer,
    with a black border outside a circular field of view like the renderer's."""
    from sim2real.classes import DEFAULT_TABLE
    from sim2real.dataset.format import DatasetWriter, class_pixel_counts, sample_id
    from sim2real.io import write_json_atomic, write_png

    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, {"kind": "render", "classes": DEFAULT_TABLE.to_json(), "config": {"synthetic": True}})
    yy, xx = np.mgrid[0:h, 0:w]
    inside = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < (0.55 * w) ** 2
    for i in range(n):
        seg = np.where(inside, 4, 0).astype(np.uint8)
        for cid in (1, 2, 3):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.1, 0.3) * min(w, h)
            seg[((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) & inside] = cid
        img = smooth_image(rng, w, h)
        img[~inside] = 0
        sid = sample_id(i)
        with writer.write_sample(sid) as d:
            write_png(d / "image.png", img)
            write_png(d / "segmentation.png", seg)
            write_json_atomic(d / "meta.json", {"id": sid, "index": i, "seed": seed, "resolution": [w, h],
                                                "class_pixel_counts": class_pixel_counts(seg, DEFAULT_TABLE)})
    return root


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def train_rate(cfg, steps: int, warmup: int, device: str, size: tuple[int, int]) -> dict:
    """it/s of ``steps`` training steps after ``warmup`` (the first includes compiling)."""
    from sim2real.translate.trainer import Trainer

    w, h = size
    tr = Trainer(cfg, Synthetic(int(w * 1.25), int(h * 1.25)), Synthetic(int(w * 1.25), int(h * 1.25), seed=1),
                 None, device)
    t0 = time.perf_counter()
    losses = [tr.train_step() for _ in range(warmup)]
    _sync(tr.device)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        losses.append(tr.train_step())
    _sync(tr.device)
    dt = time.perf_counter() - t0
    finite = all(math.isfinite(float(v)) for rec in losses for k, v in rec.items() if k != "skipped")
    skipped = int(sum(float(rec["skipped"]) for rec in losses))
    return {"it_per_s": steps / dt, "warmup_s": t_warm, "steps": steps, "losses_finite": finite,
            "skipped_steps": skipped, "last_g": float(losses[-1]["g"]), "precision": tr.precision}


def translate_compute(cfg, size, k: int, batch: int, reps: int, device: str) -> dict:
    """variants/s of the model alone: batched (K styles in one decoder call) vs looped (bf16 on CUDA)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_translate import bench_translate

    return bench_translate(cfg, size, k, batch, reps, device, "bf16")


def translate_with_io(cfg, root: Path, n: int, size, k: int, batch: int, device: str, io_threads: list[int]) -> dict:
    """variants/s of the whole job (read renders, decode, score, write PNGs and label links)."""
    from sim2real.translate.inference import TranslateOptions, export, run_translation
    from sim2real.translate.trainer import Trainer

    w, h = size
    renders = synthetic_renders(root / "renders", n, w, h)
    tr = Trainer(cfg, Synthetic(64, 64), Synthetic(64, 64, seed=1), root / "run", device)
    tr.save()
    ckpt = export(root / "run" / "checkpoint.pt")
    # One warm-up translation (cuDNN autotuning, lazy init) into a folder of its own.
    run_translation(TranslateOptions(ckpt, renders, root / "warm", k=k, batch=batch, device=device, io_threads=0,
                                     shard=(0, max(1, n // batch))))
    rates: dict[int, list[float]] = {}
    for i, threads in enumerate(io_threads):  # repeat a setting to interleave: [0, 4, 0, 4]
        t0 = time.perf_counter()
        s = run_translation(TranslateOptions(ckpt, renders, root / f"out_{i}", k=k, batch=batch,
                                             device=device, io_threads=threads))
        rates.setdefault(threads, []).append(s["variants_written"] / (time.perf_counter() - t0))
    return {f"io_threads_{t}": statistics.median(v) for t, v in rates.items()}


def cycles_gpu(root: Path, count: int, timeout: float) -> dict:
    """Seconds per labelled sample rendered by Cycles on the GPU (or why it was skipped)."""
    import importlib.util

    if importlib.util.find_spec("bpy") is None:
        return {"skipped": "bpy is not installed (pip install -e '.[blender]')"}
    out = root / "cycles"
    cmd = [sys.executable, "-m", "sim2real.cli", "render", "--out", str(out), "--count", str(count),
           "--set", 'render.device="GPU"', "--no-preview"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"skipped": f"render did not finish in {timeout:.0f} s"}
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] or r.stderr.splitlines()[-1:]
        return {"skipped": lines[0] if lines else f"render exited {r.returncode}"}
    metas = sorted(out.glob("samples/*/meta.json"))
    secs = [json.loads(p.read_text())["render"]["seconds"]["sample_s"] for p in metas]
    return {"s_per_sample": statistics.median(secs[1:] or secs), "first_sample_s": secs[0], "samples": len(secs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu_check.json", help="JSON file for the table")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny settings: test the script itself")
    ap.add_argument("--train-steps", type=int, default=None, help="timed training steps (default 200; smoke 2)")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for everything (sections past it are skipped)")
    ap.add_argument("--renders", type=int, default=None, help="synthetic renders to translate (default 64; smoke 4)")
    ap.add_argument("--cycles-samples", type=int, default=4)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    import torch

    from sim2real.translate.config import load_config

    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: PyTorch sees no CUDA device; nothing measured (use --smoke to test the script on the CPU)")
        return 0
    device = "cpu" if args.smoke else "cuda"
    if args.smoke:
        torch.set_num_threads(1)
        paper = load_config(None, {**TINY, "train": {"log_every": 1}})
        size, k, batch, steps, warmup, n_renders, reps = (48, 32), 5, 2, args.train_steps or 2, 1, args.renders or 4, 1
    else:
        torch.backends.cudnn.benchmark = True
        paper = load_config("paper", {"train": {"precision": "bf16"}})
        size, k, batch, steps, warmup, n_renders, reps = (452, 256), 5, 32, args.train_steps or 200, 10, \
            args.renders or 64, 5
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": device,
              "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "torch": torch.__version__,
              "smoke": args.smoke, "rows": []}

    def row(what: str, value, unit: str = "", note: str = "") -> None:
        report["rows"].append({"what": what, "value": value, "unit": unit, "note": note})
        v = f"{value:.3g}" if isinstance(value, float) else str(value)
        print(f"{what:<44} {v:>10} {unit:<12} {note}", flush=True)

    def time_left() -> float:
        return args.budget - (time.perf_counter() - t_start)

    print(f"{'what':<44} {'value':>10} {'unit':<12} note")
    r = train_rate(paper, steps, warmup, device, size)
    row(f"train paper {size[0]}x{size[1]} b1 {r['precision']}", r["it_per_s"], "it/s",
        f"{steps} steps; losses finite: {r['losses_finite']}; skipped {r['skipped_steps']}")
    report["train"] = r
    if args.smoke:
        row("train --compile", "skipped", "", "smoke (compiling on a CPU takes minutes)")
    elif time_left() < 150:
        row("train --compile", "skipped", "", f"budget: {time_left():.0f} s left")
    else:
        cfg_c = load_config("paper", {"train": {"precision": "bf16", "compile": True}})
        rc = train_rate(cfg_c, steps, warmup, device, size)
        row(f"train paper {size[0]}x{size[1]} b1 {rc['precision']} --compile", rc["it_per_s"], "it/s",
            f"compile+warm-up {rc['warmup_s']:.0f} s; losses finite: {rc['losses_finite']}")
        report["train_compile"] = rc
    tc = translate_compute(paper, size, k, batch, reps, device)
    row(f"translate K={k} {size[0]}x{size[1]} batched, no I/O", tc["batched"], "variants/s", f"batch {batch} renders")
    row(f"translate K={k} {size[0]}x{size[1]} looped, no I/O", tc["looped"], "variants/s", "one decoder call per style")
    report["translate_compute"] = tc
    with tempfile.TemporaryDirectory() as tmp:
        if time_left() < 60:
            row("translate job with file I/O", "skipped", "", f"budget: {time_left():.0f} s left")
        else:
            ti = translate_with_io(paper, Path(tmp), n_renders, size, k, batch, device, [0, 4])
            row(f"translate K={k} job with I/O, io threads 4", ti["io_threads_4"], "variants/s",
                f"{n_renders} renders read, {n_renders * k} variants written")
            row(f"translate K={k} job with I/O, no io threads", ti["io_threads_0"], "variants/s",
                "reads and writes in the main thread")
            report["translate_io"] = ti
        if args.smoke:
            row("Cycles on the GPU", "skipped", "", "smoke")
        elif time_left() < 60:
            row("Cycles on the GPU", "skipped", "", f"budget: {time_left():.0f} s left")
        else:
            cy = cycles_gpu(Path(tmp), args.cycles_samples, time_left() - 10)
            if "skipped" in cy:
                row("Cycles on the GPU", "skipped", "", cy["skipped"])
            else:
                row("Cycles GPU, default preset 452x256 4 spp", cy["s_per_sample"], "s/sample",
                    f"median of {cy['samples']} (first {cy['first_sample_s']:.1f} s)")
            report["cycles"] = cy
    report["total_s"] = time.perf_counter() - t_start
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"total {report['total_s']:.0f} s; table written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
