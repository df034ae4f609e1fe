"""Training batches: what step ``t`` draws, and the loader that prepares them ahead.

Every random choice of item ``j`` of the global batch of step ``t`` (which image, the
augmentation, the style code, the encoder noise) comes from a generator seeded with
``(seed, t, j)``; the style-source coin of a step from ``(seed, t)``. A batch is therefore
a pure function of (config, step, rank): worker processes can prepare batches ahead in
any order, and a run resumed at step N draws exactly what a straight run would have.
"""

from __future__ import annotations

import signal

import numpy as np
import torch

from ..errors import Sim2RealError
from .config import TranslatorConfig, work_short
from .data import augment


def step_seed(seed: int, step: int) -> np.random.Generator:
    """Draws shared by the whole step (every process): the style-source coin, NCE patches."""
    return np.random.default_rng([int(seed), int(step), 0x5EED])


def item_seed(seed: int, step: int, item: int) -> np.random.Generator:
    """Draws of item ``item`` of the global batch of ``step``: crops, style code, noise."""
    return np.random.default_rng([int(seed), int(step), int(item), 0x17E4])


class StepBatches(torch.utils.data.Dataset):
    """Batch ``step`` of this process (rank ``rank``): ``batches[step]`` is a dict of

    - ``xs``, ``xr``: sim and real crops (B, 3, h, w) in [-1, 1];
    - ``s_rand``: random style codes (B, style_dim); ``use_real``: the style-source coin;
    - ``s_rand2``: a second random code per item (with ``loss.diversity``), or None;
    - ``noise_r``, ``noise_s2r``: encoder input noise, or None;
    - ``ys``: the sim crops' label ids (B, h, w) aligned with them (with ``labels``), or None.
    """

    def __init__(self, cfg: TranslatorConfig, sim, real, rank: int = 0, labels: bool = False):
        self.cfg, self.sim, self.real, self.rank, self.labels = cfg, sim, real, rank, labels

    def __len__(self) -> int:
        return self.cfg.train.max_iter

    def __getitem__(self, step: int) -> dict:
        t, d, m = self.cfg.train, self.cfg.data, self.cfg.model
        use_real = bool(step_seed(t.seed, step).random() < self.cfg.loss.style_from_real_prob)
        xs, ys, xr, s_rand, s_rand2, n_r, n_s2r = [], [], [], [], [], [], []
        for i in range(t.batch_size):
            rng = item_seed(t.seed, step, self.rank * t.batch_size + i)
            if self.labels:
                x, y = self._draw(self.sim, rng, d.fov_prob_sim, work_short(d, "sim"), True)
                xs.append(x)
                ys.append(y)
            else:
                xs.append(self._draw(self.sim, rng, d.fov_prob_sim, work_short(d, "sim")))
            xr.append(self._draw(self.real, rng, d.fov_prob_real, work_short(d, "real")))
            s_rand.append(torch.from_numpy(rng.standard_normal(m.style_dim).astype(np.float32)))
            if m.real_input_noise > 0:
                tg = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
                n_r.append(torch.randn(xr[-1].shape, generator=tg))
                n_s2r.append(torch.randn(xs[-1].shape, generator=tg))
            if self.cfg.loss.diversity > 0:  # drawn last: every other draw stays what it was
                s_rand2.append(torch.from_numpy(rng.standard_normal(m.style_dim).astype(np.float32)))
        return {"xs": torch.stack(xs), "xr": torch.stack(xr), "s_rand": torch.stack(s_rand),
                "s_rand2": torch.stack(s_rand2) if s_rand2 else None,
                "noise_r": torch.stack(n_r) if n_r else None, "noise_s2r": torch.stack(n_s2r) if n_s2r else None,
                "use_real": torch.tensor(use_real), "ys": torch.stack(ys) if ys else None}

    def _draw(self, source, rng, fov_prob: float, short: int | None, labels: bool = False):
        # Blank crops (black video frames, a crop inside the black border) are redrawn:
        # instance norm of a constant image has degenerate gradients that blow up to NaN.
        for _ in range(20):
            i = int(rng.integers(len(source)))
            img = source.get(i)
            # native scale (short None): the render keeps its own short side
            sh = min(img.shape[:2]) if short is None else short
            if labels:
                x, y = augment(img, rng, self.cfg.data, fov_prob, sh, source.get_labels(i))
            else:
                x = augment(img, rng, self.cfg.data, fov_prob, sh)
            if float(x.std()) > 0.02:
                break
        return (x, y) if labels else x


class _Carried(StepBatches):
    """In a worker process: a user error travels back as data (DataLoader would re-raise it
    with the worker's traceback in the message, and the user is promised one line)."""

    def __init__(self, batches: StepBatches):
        self.inner = batches

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, step: int):
        try:
            return self.inner[step]
        except Sim2RealError as exc:
            return {"error": exc}


def _quiet_worker(_worker_id: int) -> None:
    # Ctrl-C reaches the whole process group; the training loop alone decides when to stop
    # (between steps, after a checkpoint), so its batch workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def iterate_batches(batches: StepBatches, start: int, stop: int, workers: int = 0, pin_memory: bool = False,
                    prefetch: int = 2):
    """Batches ``start .. stop - 1`` in order. ``workers`` > 0: prepared ahead by that many
    DataLoader processes (``prefetch`` batches each; pinned memory for a CUDA device)."""
    if workers <= 0 or stop <= start:
        for step in range(start, stop):
            yield batches[step]
        return
    loader = torch.utils.data.DataLoader(_Carried(batches), batch_size=None, sampler=range(start, stop),
                                         num_workers=workers, pin_memory=pin_memory, prefetch_factor=prefetch,
                                         worker_init_fn=_quiet_worker)
    for b in loader:
        if "error" in b:
            raise b["error"]
        yield b


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if v is not None else None) for k, v in batch.items()}
