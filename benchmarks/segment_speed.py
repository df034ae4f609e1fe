"""Segmenter speed on this machine: training steps/s and inference images/s.

    python benchmarks/segment_speed.py [--size 160x96] [--batch 8] [--base 16] [--threads 1] [--device cpu]

Synthetic inputs (no data needed); prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from sim2real.segment.train import TrainConfig, build_model, normalise, seg_loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="160x96")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--base", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    cfg = TrainConfig(size=(w, h), batch=args.batch, base=args.base)
    dev = torch.device(args.device)
    model = build_model(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(0)
    x = torch.rand((args.batch, 3, h, w), generator=g).to(dev)
    y = torch.randint(0, 3, (args.batch, h, w), generator=g).to(dev)

    def step():
        loss, _, _ = seg_loss(model(normalise(x)), y, 0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    train_sps = args.steps / (time.perf_counter() - t0)
    model.eval()
    with torch.inference_mode():
        model(x)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            model(normalise(x))
        infer_ips = args.steps * args.batch / (time.perf_counter() - t0)
    print(json.dumps({"size": [w, h], "batch": args.batch, "base": args.base, "threads": args.threads,
                      "device": args.device, "params": sum(p.numel() for p in model.parameters()),
                      "train_steps_per_s": round(train_sps, 3), "infer_images_per_s": round(infer_ips, 1)}))


if __name__ == "__main__":
    main()
