"""Training loop of the segmenter: seeded, resumable, fine-tunable.

Every step draws its batch and augmentation from RNGs seeded with (seed, step), so a run
resumed from a checkpoint takes exactly the steps an uninterrupted run would have taken.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from ..errors import Sim2RealError
from .checkpoint import load_checkpoint, save_checkpoint
from .data import DEFAULT_CLASSES, IGNORE, Item, preload

CHECKPOINT_NAME = "checkpoint.pt"
# Fixed input normalisation (no data-set statistics, so every domain is treated alike).
MEAN, STD = 0.5, 0.25
# Settings a resumed run may change; every other one must stay as it was.
RESUMABLE_OVERRIDES = ("steps", "checkpoint_every", "log_every")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a segmentation run (stored in its checkpoint)."""

    classes: tuple[str, ...] = DEFAULT_CLASSES
    size: tuple[int, int] = (160, 96)   # (width, height) the images are resized to
    steps: int = 600
    batch: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 20
    base: int = 16                      # U-Net channels at full resolution
    depth: int = 4                      # U-Net down-samplings
    seed: int = 0
    augment: bool = True
    dice_weight: float = 0.5            # soft-Dice loss weight beside cross-entropy
    checkpoint_every: int = 100
    log_every: int = 10

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "size", tuple(int(v) for v in self.size))
        mult = 2 ** self.depth
        w, h = self.size
        if w % mult or h % mult or w <= 0 or h <= 0:
            raise Sim2RealError(f"--size {w}x{h}: width and height must be positive multiples of {mult} "
                                f"(2**depth), e.g. 160x96")
        for name in ("steps", "batch", "base", "depth", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise Sim2RealError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise Sim2RealError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["size"] = list(self.size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 1% of ``lr`` at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def build_model(cfg: TrainConfig):
    """The U-Net, its initial weights drawn from ``cfg.seed`` (the process's own RNG untouched)."""
    import torch

    from .unet import UNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return UNet(len(cfg.classes) + 1, base=cfg.base, depth=cfg.depth)


def normalise(x):
    return (x - MEAN) / STD


def seg_loss(logits, target, dice_weight: float):
    """Cross-entropy (ignore 255) + ``dice_weight`` x soft Dice over the foreground classes."""
    import torch
    from torch.nn import functional as F

    ce = F.cross_entropy(logits, target, ignore_index=IGNORE)
    if dice_weight <= 0:
        return ce, ce.detach(), torch.zeros(())
    valid = (target != IGNORE).unsqueeze(1).float()
    probs = logits.softmax(1) * valid
    onehot = F.one_hot(target.clamp(max=logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2).float() * valid
    inter = (probs * onehot).sum((0, 2, 3))[1:]
    denom = (probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3)))[1:]
    dice_loss = 1 - ((2 * inter + 1) / (denom + 1)).mean()
    return ce + dice_weight * dice_loss, ce.detach(), dice_loss.detach()


def step_batch(cfg: TrainConfig, step: int, n_items: int):
    """Batch indices and an augmentation generator, both derived from (seed, step)."""
    import torch

    rng = np.random.default_rng([cfg.seed, step])
    idx = rng.integers(0, n_items, cfg.batch)
    g = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 62)))
    return torch.from_numpy(idx), g


def data_fingerprint(items: list[Item]) -> str:
    import hashlib

    h = hashlib.sha256()
    for it in items:
        h.update(f"{it.source}\0{it.id}\n".encode())
    return h.hexdigest()[:16]


def resolve_device(device: str):
    import torch

    device = str(device)  # accepts a torch.device too
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise Sim2RealError("--device cuda: no CUDA GPU is available here; use --device cpu")
    return torch.device(device)


def train(items: list[Item], out, cfg: TrainConfig, *, init=None, resume: bool = False,
          overrides: dict | None = None, device: str = "auto", progress: bool = True,
          stop_after: int | None = None) -> dict:
    """Train (or resume, or fine-tune from ``init``) a U-Net on ``items``; returns a summary.

    ``out`` is the run folder; its ``checkpoint.pt`` is written every ``checkpoint_every``
    steps, at the end and on Ctrl-C. With ``resume`` an existing checkpoint is continued
    with its stored config (only :data:`RESUMABLE_OVERRIDES` may change via ``overrides``).
    ``stop_after`` ends the call after that many steps (tests, time-boxed runs).
    """
    import torch

    from ..io import write_json_atomic
    from ..progress import Progress
    from .augment import augment

    out = Path(out)
    ckpt_path = out / CHECKPOINT_NAME
    overrides = dict(overrides or {})
    state = None
    if ckpt_path.exists():
        if not resume:
            raise Sim2RealError(f"{out} already holds a run ({ckpt_path.name}); pass --resume to continue it "
                                f"or choose another --out")
        state = load_checkpoint(ckpt_path)
        bad = sorted(set(overrides) - set(RESUMABLE_OVERRIDES))
        if bad:
            raise Sim2RealError(f"cannot change {', '.join(bad)} when resuming {out}; only "
                                f"{', '.join(RESUMABLE_OVERRIDES)} may change (or start a new --out)")
        cfg = replace(TrainConfig.from_dict(state["config"]), **overrides)
        if state["data"].get("fingerprint") != data_fingerprint(items):
            raise Sim2RealError(f"--data differs from what {out} was trained on "
                                f"({', '.join(state['data'].get('sources', []))}); resume with the same --data")
        if init is not None and state.get("init_from") != str(init):
            raise Sim2RealError(f"{out} was started from {state.get('init_from')!r}, not {str(init)!r}")
    else:
        cfg = replace(cfg, **overrides) if overrides else cfg

    dev = resolve_device(device)
    model = build_model(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, history, wall = 0, [], 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        if state.get("optimizer") is not None:
            opt.load_state_dict(state["optimizer"])
        start, history, wall = int(state["step"]), list(state.get("history", [])), float(state.get("wall_s", 0.0))
    elif init is not None:
        init_state = load_checkpoint(init)
        init_cfg = TrainConfig.from_dict(init_state["config"])
        if tuple(init_state["classes"]) != cfg.classes:
            raise Sim2RealError(f"--init {init} predicts {','.join(init_state['classes'])}, this run wants "
                                f"{','.join(cfg.classes)}; fine-tune with the same --classes")
        if (init_cfg.base, init_cfg.depth) != (cfg.base, cfg.depth):
            raise Sim2RealError(f"--init {init} has a U-Net of base {init_cfg.base}, depth {init_cfg.depth}; "
                                f"this run asks for base {cfg.base}, depth {cfg.depth}")
        model.load_state_dict(init_state["model"])

    data_info = {"sources": sorted({it.source for it in items}), "n_images": len(items),
                 "n_groups": len({(it.source, it.video) for it in items}), "fingerprint": data_fingerprint(items)}
    out.mkdir(parents=True, exist_ok=True)

    def snapshot(step: int) -> dict:
        return {"config": cfg.to_dict(), "classes": list(cfg.classes), "model": model.state_dict(),
                "optimizer": opt.state_dict(), "step": step, "history": history, "data": data_info,
                "init_from": None if init is None else str(init), "wall_s": wall}

    if start >= cfg.steps:
        return _summary(out, cfg, start, history, wall, data_info)

    with Progress(len(items), "segment load", "img", enabled=progress) as bar:
        images, labels = preload(items, cfg.size, bar)

    model.train()
    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    step = start
    acc = {"loss": 0.0, "ce": 0.0, "dice": 0.0, "n": 0}
    t0 = time.perf_counter()
    try:
        with Progress(cfg.steps, "segment train", "step", initial=start, enabled=progress) as bar:
            while step < end:
                idx, g = step_batch(cfg, step, len(items))
                x = images[idx].float().div_(255.0)
                y = labels[idx].long()
                if cfg.augment:
                    x, y = augment(x, y, g)
                for group in opt.param_groups:
                    group["lr"] = lr_at(cfg, step)
                logits = model(normalise(x).to(dev))
                loss, ce, dl = seg_loss(logits, y.to(dev), cfg.dice_weight)
                if not torch.isfinite(loss):
                    raise Sim2RealError(f"training diverged at step {step} (loss {loss.item()}); lower --lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                acc["loss"] += loss.item()
                acc["ce"] += ce.item()
                acc["dice"] += float(dl)
                acc["n"] += 1
                if step % cfg.log_every == 0 or step == end:
                    n = acc.pop("n")
                    history.append({"step": step, "lr": lr_at(cfg, step - 1), **{k: v / n for k, v in acc.items()}})
                    acc = {"loss": 0.0, "ce": 0.0, "dice": 0.0, "n": 0}
                bar.update(1, loss=loss.item())
                if step % cfg.checkpoint_every == 0 or step == end:
                    wall += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    save_checkpoint(ckpt_path, snapshot(step))
    except KeyboardInterrupt:
        wall += time.perf_counter() - t0
        save_checkpoint(ckpt_path, snapshot(step))
        raise
    summary = _summary(out, cfg, step, history, wall, data_info)
    write_json_atomic(out / "train.json", summary)
    return summary


def _summary(out, cfg, step, history, wall, data_info) -> dict:
    return {"checkpoint": str(Path(out) / CHECKPOINT_NAME), "step": step, "steps": cfg.steps,
            "done": step >= cfg.steps, "wall_s": round(wall, 2),
            "final_loss": history[-1]["loss"] if history else None,
            "config": cfg.to_dict(), "data": data_info, "history": history}
