"""What a run writes besides its checkpoint: the loss log and the sample grids (rank 0 only)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_path, write_png
from .config import TranslatorConfig, work_short
from .data import resize_short, to_tensor
from .distributed import mean_over_processes

LOSS_LOG = "losses.jsonl"
SAMPLES_DIR = "samples"


class LossLog:
    """Losses accumulated on the device; every ``every`` steps the means (over steps and
    processes) are appended to ``losses.jsonl``. The one host sync of a step is there."""

    def __init__(self, run_dir: Path | None, every: int, rank: int = 0, world_size: int = 1):
        self.path = None if run_dir is None else Path(run_dir) / LOSS_LOG
        self.every, self.rank, self.world_size = every, rank, world_size
        self.acc: dict[str, torch.Tensor] = {}
        self.n = 0
        self.last: dict[str, float] = {}

    def add(self, losses: dict[str, torch.Tensor], step: int, lr: float) -> dict[str, float] | None:
        """Add a step's losses; at a log step returns the means written."""
        for k, v in losses.items():
            self.acc[k] = self.acc[k] + v if k in self.acc else v.clone()
        self.n += 1
        return self.flush(step, lr) if step % self.every == 0 else None

    def flush(self, step: int, lr: float) -> dict[str, float] | None:
        """Append the mean losses since the last line (no-op when there are none)."""
        if not self.n:
            return None
        keys = list(self.acc)
        vals = mean_over_processes(torch.stack([self.acc[k].float() for k in keys]) / self.n, self.world_size)
        means = dict(zip(keys, vals.tolist()))
        if self.rank == 0:
            rec = {"step": step, "time": round(time.time(), 3), "lr": lr, **means}
            with open(self.path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self.acc, self.n = {}, 0
        self.last = means
        return means

    def truncate(self, step: int) -> None:
        """Drop lines past ``step`` (written after the checkpoint a run resumes from)."""
        if self.path is None or not self.path.is_file():
            return
        keep = [ln for ln in self.path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= step]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(ln + "\n" for ln in keep))


def fixed_images(cfg: TranslatorConfig, source, domain: str, n: int) -> torch.Tensor:
    """``n`` evenly spaced images of ``source``, resized and centre-cropped to the training crop, in [-1, 1]."""
    ch, cw = (int(c) for c in cfg.data.crop)
    idx = np.linspace(0, len(source) - 1, n).round().astype(int)
    short = work_short(cfg.data, domain)
    out = []
    for i in idx:
        x = to_tensor(source.get(int(i)))
        x = resize_short(x, short) if short else x
        h, w = x.shape[-2:]
        if h < ch or w < cw:
            x = torch.nn.functional.pad(x, (0, max(0, cw - w), 0, max(0, ch - h)))
            h, w = x.shape[-2:]
        top, left = (h - ch) // 2, (w - cw) // 2
        out.append(x[:, top:top + ch, left:left + cw] * 2 - 1)
    return torch.stack(out)


@torch.no_grad()
def sample_grid(cfg: TranslatorConfig, ema_sim, ema_real, sim, real, device, autocast) -> np.ndarray:
    """Rows of sim | K translations (EMA generator, fixed styles) | real, as uint8 (H, W, 3)."""
    t = cfg.train
    xs = fixed_images(cfg, sim, "sim", t.sample_rows).to(device)
    xr = fixed_images(cfg, real, "real", t.sample_rows).to(device)
    g = torch.Generator().manual_seed(int(t.seed) + 12345)
    styles = torch.randn(1, t.sample_k, cfg.model.style_dim, generator=g)
    styles = styles.expand(xs.shape[0], -1, -1).to(device)
    with autocast():
        y = ema_real.decode_multi(ema_sim.encode(xs), styles, xs).float()
    rows = [torch.cat([xs[i], *y[i], xr[i]], dim=2) for i in range(xs.shape[0])]
    grid = torch.cat(rows, dim=1)
    return ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


def write_grid(run_dir: Path, step: int, grid: np.ndarray) -> Path:
    path = Path(run_dir) / SAMPLES_DIR / f"step_{step:07d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write_png(tmp, grid)
    return path
