"""Bilateral-grid vs MUNIT generator: translation variants/s and parameters.

    nice python benchmarks/bench_bilateral.py [--threads 1] [--k 5] [--size 452x256] [--preset small]
                                              [--set bil_detail=0.1 ...] [--repeats 5]

The inference model of each family (the preset's settings, ``model.family`` switched) translates
one render at ``--size`` (width x height) into ``--k`` variants: content encoded once, the K
styles decoded in one call, as ``sim2real translate`` does. Prints variants/s (best of
``--repeats`` timed calls after one warm-up; wall clock, and per second of this process's CPU
time, which a busy machine inflates less), parameters per generator and of the inference
model, and the convolution FLOPs per variant split into the part that does not depend on the
resolution and the per-pixel part (measured at two resolutions). Random weights: speed does
not depend on training.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from sim2real.translate.bilateral import make_generators, make_sim_to_real
from sim2real.translate.config import load_config


def _coerce(v: str):
    for t in (int, float):
        try:
            return t(v)
        except ValueError:
            pass
    return v


def _translate(model, x, styles):
    with torch.no_grad():
        return model.decode_multi(model.content(x), styles)


def _flops(model, w, h, k, style_dim):
    x = torch.rand(1, 3, h, w) * 2 - 1
    styles = torch.randn(1, k, style_dim)
    with FlopCounterMode(display=False) as fc:
        _translate(model, x, styles)
    return fc.get_total_flops() / k


def bench(family: str, args) -> dict:
    overrides = {"model": {"family": family, **dict((kv.split("=", 1)[0], _coerce(kv.split("=", 1)[1]))
                                                     for kv in args.set)}}
    cfg = load_config(args.preset, overrides)
    m = cfg.model
    w, h = (int(v) for v in args.size.split("x"))
    mult = 2 ** m.n_downsample
    w, h = w + (-w) % mult, h + (-h) % mult   # the translator pads to this multiple
    model = make_sim_to_real(m).eval()
    sim, real = make_generators(m)
    x = torch.rand(1, 3, h, w) * 2 - 1
    styles = torch.randn(1, args.k, m.style_dim)
    _translate(model, x, styles)
    best = best_cpu = float("inf")
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        _translate(model, x, styles)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    f1, f2 = _flops(model, w, h, args.k, m.style_dim), _flops(model, 2 * w, 2 * h, args.k, m.style_dim)
    per_px = (f2 - f1) / (3 * w * h)
    return {"family": family, "size": f"{w}x{h}", "k": args.k, "variants_per_s": round(args.k / best, 2),
            "variants_per_cpu_s": round(args.k / best_cpu, 2),
            "params_sim_gen": sum(p.numel() for p in sim.parameters()),
            "params_real_gen": sum(p.numel() for p in real.parameters()),
            "params_inference": sum(p.numel() for p in model.parameters()),
            "conv_gflop_per_variant": round(f1 / 1e9, 4),
            "conv_flop_per_pixel": round(per_px, 1),
            "conv_gflop_resolution_free": round((f1 - per_px * w * h) / 1e9, 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--size", default="452x256")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--families", default="bilateral,munit")
    ap.add_argument("--set", action="append", default=[], help="model.KEY=VALUE for both families")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = []
    for fam in args.families.split(","):
        r = bench(fam, args)
        out.append(r)
        print(f"{fam:9s} {r['size']} K={r['k']}: {r['variants_per_s']} variants/s on {args.threads} thread(s) "
              f"({r['variants_per_cpu_s']} per CPU-second); "
              f"params sim/real/inference {r['params_sim_gen']}/{r['params_real_gen']}/{r['params_inference']}; "
              f"conv GFLOP/variant {r['conv_gflop_per_variant']} "
              f"({r['conv_flop_per_pixel']} FLOP/pixel, {r['conv_gflop_resolution_free']} resolution-free)",
              flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
