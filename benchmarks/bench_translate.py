"""Translator speed on this machine: training iterations/s and translation variants/s.

    python benchmarks/bench_translate.py [--threads 1] [--device cpu|cuda] [--precision bf16|fp32]
                                         [--presets small,paper] [--k 5] [--compile]

- train: full training steps (generator + discriminator update, EMA) of each preset at
  its training crop, on synthetic images held in memory (no disk I/O measured);
- translate: variants/s with K styles per render at 452x256 (the paper preset's scale)
  and at the small preset's scale, "batched" (content encoded once, the K styles decoded
  in one call, ``--batch`` renders per call) vs "looped" (one decoder call per style);
- with ``--io-renders N``: the whole ``sim2real translate`` job on N synthetic 452x256
  renders (read the renders, decode, score, write the PNG variants and label links),
  with ``--io-threads`` worker threads for the file I/O and with none.

Prints one line per figure and a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from sim2real.translate.config import load_config
from sim2real.translate.generators import SimToReal
from sim2real.translate.trainer import Trainer


class _Synthetic:
    """Stands in for SimImages/RealFrames: random uint8 images of one size."""

    def __init__(self, w: int, h: int, n: int = 8, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]

    def __len__(self):
        return len(self.images)

    def get(self, i):
        return self.images[i]


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bench_train(preset: str, steps: int, warmup: int, device: str, precision: str, compile_: bool) -> float:
    cfg = load_config(preset, {"train": {"precision": precision, "compile": compile_}})
    h, w = cfg.data.crop
    src = _Synthetic(int(w * 1.25), int(h * 1.25))
    tr = Trainer(cfg, src, _Synthetic(int(w * 1.25), int(h * 1.25), seed=1), None, device)
    for _ in range(warmup):
        tr.train_step()
    _sync(tr.device)
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    _sync(tr.device)
    return steps / (time.perf_counter() - t0)


@torch.no_grad()
def bench_translate(preset, size: tuple[int, int], k: int, batch: int, reps: int, device: str,
                    precision: str) -> dict:
    """variants/s of the model alone: K styles in one batched decoder call vs one call per style.
    ``preset``: a preset name or a loaded config."""
    cfg = load_config(preset) if isinstance(preset, str) else preset
    dev = torch.device(device)
    model = SimToReal(cfg.model).to(dev).eval()
    w, h = size
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, h, w, generator=g) * 2 - 1).to(dev)
    styles = torch.randn(batch, k, cfg.model.style_dim, generator=g).to(dev)
    use_bf16 = dev.type == "cuda" and precision == "bf16"
    from contextlib import nullcontext

    ctx = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext

    def batched():
        with ctx():
            return model.decode_multi(model.content(x), styles)

    def looped():
        with ctx():
            c = model.content(x)
            return [model.real.decode(c, styles[:, j]) for j in range(k)]

    out = {}
    for name, fn in (("batched", batched), ("looped", looped)):
        fn()
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        _sync(dev)
        out[name] = reps * batch * k / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
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
        r = bench_translate(preset, size, args.k, batch, reps, args.device, args.precision)
        res[f"translate_{preset}_{size[0]}x{size[1]}_k{args.k}"] = r
        print(f"translate {preset:<6} {size[0]}x{size[1]} K={args.k} batch {batch}: "
              f"batched {r['batched']:.1f} variants/s, looped {r['looped']:.1f} variants/s", flush=True)
    if args.io_renders:
        import tempfile
        from pathlib import Path

        from gpu_check import translate_with_io

        for preset in args.presets.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                r = translate_with_io(load_config(preset), Path(tmp), args.io_renders, (452, 256), args.k, batch,
                                      args.device, [0, args.io_threads, 0, args.io_threads])
            res[f"translate_job_{preset}_452x256_k{args.k}"] = r
            print(f"translate job {preset:<6} {args.io_renders} renders 452x256 K={args.k} batch {batch}: "
                  f"{r[f'io_threads_{args.io_threads}']:.1f} variants/s with {args.io_threads} I/O threads, "
                  f"{r['io_threads_0']:.1f} without", flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
