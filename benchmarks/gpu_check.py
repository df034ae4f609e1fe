"""A GPU proof in minutes: the shipped GPU preset trained as a user trains it, compiled and
not, then translated, on one CUDA device, with no downloads.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--budget 450] [--preset gpu]
    python benchmarks/gpu_check.py --smoke      # the same code path on the CPU, tiny networks

Sections (each prints a row of one table; everything is also written as one JSON):

1. train ``--preset`` (default ``gpu``: every loss term it enables, PatchNCE and semantic
   included, bf16 autocast, batch 4) with ``Trainer.fit`` on synthetic 452x256 renders and
   real-like frames it writes to disk first (so the DataLoader workers decode PNG/JPEG as
   in a real run): it/s, images/s, peak GPU memory, and whether every logged loss stayed
   finite with no skipped update. The number of steps is set by time (``--train-s``);
2. the same with ``train.compile`` (compile time reported apart);
3. translate K=5 at 452x256 (variants/s) with the checkpoint of section 1: the model alone (K styles
   decoded in one batched call vs one call per style), then the whole ``run_translation``
   job (read renders, decode, score, write PNG variants and label links), with and
   without I/O threads: variants/s;
4. Cycles on the GPU, if Blender (bpy) sees one: seconds per labelled sample.

``--budget`` seconds bound the whole run (default 450 s, under 8 minutes with start-up):
a section that would start past it is skipped and says so. Without CUDA (and without
``--smoke``) it says so and exits 0. ``--smoke`` runs sections 1 and 3 on the CPU with the
preset's loss terms and bf16 autocast but tiny networks, 64x48 images and batch 1, and skips
compiling (minutes on a CPU) and Cycles: a test of the script and of the code path.
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from synthetic import (sync, synthetic_real_frames, synthetic_renders, translate_job_rate,  # noqa: E402
                       translate_model_rate)

# --smoke: tiny networks; every loss term, weight, batch size and the precision stay the preset's
TINY_NETS = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2,
                       "dis_num_scales": 2},
             "loss": {"semantic_warmup": 1, "nce_patches": 16}}


def check_config(preset: str, smoke: bool, compile_: bool = False):
    from sim2real.translate.config import load_config

    over = {"train": {"precision": "bf16", "compile": compile_, "log_every": 5, "sample_every": 10 ** 6,
                      "checkpoint_every": 10 ** 6}}
    if smoke:
        # batch 1: bf16 on a CPU without bf16 instructions is ~15x slower than fp32
        over = {**TINY_NETS, "train": {**over["train"], "log_every": 1, "workers": 1, "batch_size": 1}}
    else:
        over["loss"] = {"semantic_warmup": 5}  # the semantic term applies after 5 steps, not 500
    return load_config(preset, over)


def train_rate(cfg, data: dict, run: Path, device: str, seconds: float, warmup: int, max_steps: int) -> dict:
    """Train with ``Trainer.fit`` (DataLoader workers and all): ``warmup`` steps (compiling,
    autotuning), then as many steps as fit in ``seconds`` (at most ``max_steps``)."""
    import torch

    from sim2real.translate.data import RealFrames, SimImages
    from sim2real.translate.trainer import Trainer

    tr = Trainer(cfg, SimImages(data["renders"]), RealFrames([data["real"]], cfg.data), run, device)
    cuda = tr.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    tr.fit(warmup)
    sync(tr.device)
    t_warm = time.perf_counter() - t0
    per_step = t_warm / warmup
    if max_steps > 2 * warmup:  # a second short fit measures the steady rate (the first includes compiling)
        t0 = time.perf_counter()
        tr.fit(tr.step + warmup)
        sync(tr.device)
        per_step = (time.perf_counter() - t0) / warmup
    steps = int(max(2, min(max_steps, seconds / max(per_step, 1e-6))))
    start = tr.step
    t0 = time.perf_counter()
    tr.fit(start + steps)
    sync(tr.device)
    dt = time.perf_counter() - t0
    log = [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]
    finite = all(math.isfinite(v) for rec in log for k, v in rec.items() if k not in ("step", "time"))
    skipped = sum(rec.get("skipped", 0) * cfg.train.log_every for rec in log)
    terms = sorted(k for k in log[-1] if k not in ("step", "time", "lr", "skipped", "d", "g"))
    return {"it_per_s": steps / dt, "images_per_s": steps * cfg.train.batch_size / dt, "steps": steps,
            "warmup_s": t_warm, "batch_size": cfg.train.batch_size, "crop": list(cfg.data.crop),
            "precision": tr.precision, "compile": cfg.train.compile, "workers": cfg.train.workers,
            "losses_finite": finite, "skipped_steps": round(skipped), "loss_terms": terms,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None,
            "checkpoint": str(run / "checkpoint.pt")}


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
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny networks: test the script and the code path")
    ap.add_argument("--preset", default="gpu", help="translator preset to train (default gpu)")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for everything (sections past it are skipped)")
    ap.add_argument("--train-s", type=float, default=None, help="seconds of timed training per section (default 60)")
    ap.add_argument("--renders", type=int, default=None, help="synthetic renders (default 64; smoke 4)")
    ap.add_argument("--cycles-samples", type=int, default=4)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: PyTorch sees no CUDA device; nothing measured (use --smoke to test the script on the CPU)")
        return 0
    device = "cpu" if args.smoke else "cuda"
    if args.smoke:
        torch.set_num_threads(1)
        size, k, batch, n_renders, reps, warmup = (64, 48), 5, 2, args.renders or 4, 1, 1
        train_s, max_steps = args.train_s or 1.0, 2
    else:
        size, k, batch, n_renders, reps, warmup = (452, 256), 5, 32, args.renders or 64, 5, 10
        train_s, max_steps = args.train_s or 60.0, 100_000
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": device, "preset": args.preset,
              "gpu": torch.cuda.get_device_name() if device == "cuda" else None, "torch": torch.__version__,
              "smoke": args.smoke, "rows": []}

    def row(what: str, value, unit: str = "", note: str = "") -> None:
        report["rows"].append({"what": what, "value": value, "unit": unit, "note": note})
        v = f"{value:.3g}" if isinstance(value, float) else str(value)
        print(f"{what:<46} {v:>10} {unit:<12} {note}", flush=True)

    def time_left() -> float:
        return args.budget - (time.perf_counter() - t_start)

    def train_rows(r: dict, label: str) -> None:
        mem = f"; peak {r['peak_memory_gib']:.1f} GiB" if r["peak_memory_gib"] is not None else ""
        row(f"train {args.preset} {label}", r["it_per_s"], "it/s",
            f"batch {r['batch_size']}, crop {r['crop'][0]}x{r['crop'][1]}, {r['precision']}, {r['steps']} steps{mem}")
        row(f"train {args.preset} {label}", r["images_per_s"], "images/s",
            f"losses finite: {r['losses_finite']}; skipped {r['skipped_steps']}; terms {','.join(r['loss_terms'])}")

    print(f"{'what':<46} {'value':>10} {'unit':<12} note")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        w, h = size
        data = {"renders": synthetic_renders(tmp / "renders", 8, w, h),
                "real": synthetic_real_frames(tmp / "real", 16, w * 854 // 452, h * 480 // 256)}
        cfg = check_config(args.preset, args.smoke)
        r = train_rate(cfg, data, tmp / "run", device, train_s, warmup, max_steps)
        train_rows(r, "")
        report["train"] = r
        if args.smoke:
            row("train --compile", "skipped", "", "smoke (compiling on a CPU takes minutes)")
        elif time_left() < 200:
            row("train --compile", "skipped", "", f"budget: {time_left():.0f} s left")
        else:
            rc = train_rate(check_config(args.preset, False, compile_=True), data, tmp / "run_compiled", device,
                            train_s, warmup, max_steps)
            train_rows(rc, "--compile")
            row("train --compile: compile + warm-up", rc["warmup_s"], "s", f"{warmup} steps")
            report["train_compile"] = rc

        tc = translate_model_rate(cfg, size, k, batch, reps, device, "bf16")
        row(f"translate K={k} {w}x{h} batched, no I/O", tc["batched"], "variants/s", f"batch {batch} renders")
        row(f"translate K={k} {w}x{h} looped, no I/O", tc["looped"], "variants/s", "one decoder call per style")
        report["translate_model"] = tc
        if time_left() < 60:
            row("translate job with file I/O", "skipped", "", f"budget: {time_left():.0f} s left")
        else:
            job_renders = synthetic_renders(tmp / "renders_job", n_renders, w, h, seed=2)
            ti = translate_job_rate(Path(r["checkpoint"]), job_renders, tmp, k, batch, device, [0, 4], "bf16")
            row(f"translate K={k} job with I/O, io threads 4", ti["io_threads_4"], "variants/s",
                f"{n_renders} renders read, {n_renders * k} variants written")
            row(f"translate K={k} job with I/O, no io threads", ti["io_threads_0"], "variants/s",
                "reads and writes in the main thread")
            report["translate_job"] = ti
        if args.smoke:
            row("Cycles on the GPU", "skipped", "", "smoke")
        elif time_left() < 60:
            row("Cycles on the GPU", "skipped", "", f"budget: {time_left():.0f} s left")
        else:
            cy = cycles_gpu(tmp, args.cycles_samples, time_left() - 10)
            if "skipped" in cy:
                row("Cycles on the GPU", "skipped", "", cy["skipped"])
            else:
                row("Cycles GPU, default preset 452x256 4 spp", cy["s_per_sample"], "s/sample",
                    f"median of {cy['samples']} (first {cy['first_sample_s']:.1f} s)")
            report["cycles"] = cy
    report["all_losses_finite"] = all(report[s]["losses_finite"] and not report[s]["skipped_steps"]
                                      for s in ("train", "train_compile") if s in report)
    report["total_s"] = time.perf_counter() - t_start
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"total {report['total_s']:.0f} s; all losses finite: {report['all_losses_finite']}; "
          f"table written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
