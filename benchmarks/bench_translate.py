"""Translator speed on this machine: training iterations/s and translation variants/s.

    python benchmarks/bench_translate.py [--threads 1] [--device cpu|cuda] [--precision auto|bf16|fp32]
                                         [--presets small,paper] [--k 5] [--compile]

- train: full training steps (generator + discriminator update, EMA) of each preset at
  its training crop, on synthetic images held in memory (no disk I/O measured);
- translate: variants/s with K styles per render at 452x256 (the paper preset's scale)
  and at the small preset's scale, "batched" (content encoded once, the K styles decoded
  in one call, ``--batch`` renders per call) vs "looped" (one decoder call per style);
- with ``--io-renders N``: the whole ``sim2real translate`` job on N synthetic 452x256
  renders (read the renders, decode, score, write the PNG variants and label links),
  with ``--io-threads`` worker threads for the file I/O and with none.

Prints one line per figure and a JSON summary at the end. Run from the repository root
(``benchmarks/`` is put on the path for its ``synthetic`` module).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim2real.translate.config import load_config
from sim2real.translate.trainer import Trainer
from synthetic import Synthetic, sync, translate_job_rate, translate_model_rate, untrained_checkpoint


def bench_train(preset: str, steps: int, warmup: int, device: str, precision: str, compile_: bool) -> float:
    cfg = load_config(preset, {"train": {"precision": precision, "compile": compile_}})
    h, w = cfg.data.crop
    # crop [0, 0] (fit the renders): renders of the default 452x256
    w, h = (int(w * 1.25), int(h * 1.25)) if h else (452, 256)
    tr = Trainer(cfg, Synthetic(w, h), Synthetic(w, h, seed=1), None, device)
    for _ in range(warmup):
        tr.train_step()
    sync(tr.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    sync(tr.device)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--presets", default="small,paper")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--batch", type=int, default=None, help="renders per call (default 2 on CPU, 32 on CUDA)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--train-steps", default="small=10,paper=2")
    ap.add_argument("--io-renders", type=int, default=0, help="also time the whole job on N synthetic renders")
    ap.add_argument("--io-threads", type=int, default=2)
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    batch = args.batch or (32 if cuda else 2)
    steps = dict(kv.split("=") for kv in args.train_steps.split(","))
    res: dict = {"device": args.device, "threads": args.threads, "precision": args.precision,
                 "torch": torch.__version__}
    if cuda:
        res["gpu"] = torch.cuda.get_device_name()
    for preset in [] if args.skip_train else args.presets.split(","):
        n = int(steps.get(preset, 2))
        ips = bench_train(preset, n, 1 if n <= 2 else 2, args.device, args.precision, args.compile)
        crop = load_config(preset).data.crop
        res[f"train_{preset}_it_per_s"] = ips
        print(f"train {preset:<6} crop {crop[1]}x{crop[0]}: {ips:.3f} it/s", flush=True)
    sizes = {"paper": (452, 256), "small": (112, 64)}
    for preset in args.presets.split(","):
        size = sizes.get(preset, (452, 256))
        reps = 5 if cuda else (2 if preset == "paper" else 5)
        r = translate_model_rate(load_config(preset), size, args.k, batch, reps, args.device, args.precision)
        res[f"translate_{preset}_{size[0]}x{size[1]}_k{args.k}"] = r
        print(f"translate {preset:<6} {size[0]}x{size[1]} K={args.k} batch {batch}: "
              f"batched {r['batched']:.1f} variants/s, looped {r['looped']:.1f} variants/s", flush=True)
    if args.io_renders:
        import tempfile
        from pathlib import Path

        from synthetic import synthetic_renders

        for preset in args.presets.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                renders = synthetic_renders(Path(tmp) / "renders", args.io_renders, 452, 256)
                ckpt = untrained_checkpoint(load_config(preset), Path(tmp), args.device)
                r = translate_job_rate(ckpt, renders, Path(tmp), args.k, batch, args.device,
                                       [0, args.io_threads, 0, args.io_threads], args.precision)
            res[f"translate_job_{preset}_452x256_k{args.k}"] = r
            print(f"translate job {preset:<6} {args.io_renders} renders 452x256 K={args.k} batch {batch}: "
                  f"{r[f'io_threads_{args.io_threads}']:.1f} variants/s with {args.io_threads} I/O threads, "
                  f"{r['io_threads_0']:.1f} without", flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
