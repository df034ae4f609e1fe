"""The training loop: one generator and one discriminator update per step, EMA, checkpoints.

Randomness: the data drawn, the augmentation, the style codes and the encoder noise of
item ``j`` of step ``t`` all come from generators seeded with ``(seed, t, j)``; so resuming
from a checkpoint at step N and training to 2N gives the same weights as training 2N
straight.

Several processes (``torchrun --nproc-per-node N -m sim2real.cli train ...``): process
``r`` of ``N`` with ``train.batch_size`` B trains on items ``r*B .. r*B+B-1`` of the global
batch of ``N*B``, and the gradients are averaged with one flat ``all_reduce`` per update,
so N processes x batch B follow the trajectory of one process x batch N*B. The networks
are not wrapped in ``DistributedDataParallel``: a step calls the generators' encoders
and decoders several times and alternates generator and discriminator updates, which
DDP's one-forward-one-backward bookkeeping only fits with ``find_unused_parameters`` and
static-graph workarounds; averaging the gradients by hand is exact and simple. Rank 0
alone writes checkpoints, logs and sample grids.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..io import atomic_path, write_json_atomic, write_png
from ..io.videos import sort_videos
from .checkpoint import CHECKPOINT_NAME, load_state, rng_state, save_checkpoint, set_rng_state
from .config import TranslatorConfig, work_short
from .device import autocast, autocast_dtype, dist_info, pick_device, precision_name
from .data import RealFrames, SimImages, augment, fit_to_renders, resize_short, to_tensor
from .discriminators import MultiScaleDiscriminator
from .generators import RealGenerator, SimGenerator
from .losses import (PatchHeads, encoder_features, gan_d_loss, gan_g_loss, l1, patch_nce_loss, semantic_loss,
                     structure_loss)

SEMANTIC_CLASSES = 8  # the segmenter predicts the render class ids 0..7 (higher ids: background)

LOSS_LOG = "losses.jsonl"
SAMPLES_DIR = "samples"


def init_weights(module: nn.Module, generator: torch.Generator, kind: str = "kaiming") -> None:
    """MUNIT init (Kaiming normal or N(0, 0.02)) from a seeded generator, biases zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if kind == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in", generator=generator)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def step_seed(seed: int, step: int) -> np.random.Generator:
    """Draws shared by the whole step (every process): the style-source coin."""
    return np.random.default_rng([int(seed), int(step), 0x5EED])


def item_seed(seed: int, step: int, item: int) -> np.random.Generator:
    """Draws of item ``item`` of the global batch of ``step``: crops, style code, noise."""
    return np.random.default_rng([int(seed), int(step), int(item), 0x17E4])


class Trainer:
    """Holds the four networks, two EMA generators, optimisers and the step counter."""

    def __init__(self, cfg: TranslatorConfig, sim: SimImages | None, real: RealFrames | None,
                 run_dir: str | os.PathLike | None = None, device: str | None = "cpu"):
        self.cfg = cfg
        if sim is not None:
            fit_to_renders(cfg, sim)  # native scale, crop [0, 0]: recorded in the run's config
        self.sim, self.real = sim, real
        # the real videos this run has seen (a held-out evaluation checks its test videos are not among them)
        self.real_videos = real.videos() if hasattr(real, "videos") else []
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.device = pick_device(device)
        self.rank, self.world_size = dist_info()
        self.seg = self.nce_heads = self.opt_seg = None
        m, o = cfg.model, cfg.optim
        g = torch.Generator().manual_seed(int(cfg.train.seed))
        self.gen_sim, self.gen_real = SimGenerator(m), RealGenerator(m)
        self.dis_sim, self.dis_real = MultiScaleDiscriminator(m), MultiScaleDiscriminator(m)
        for net in (self.gen_sim, self.gen_real, self.dis_sim, self.dis_real):
            init_weights(net, g)
        self.ema_sim, self.ema_real = copy.deepcopy(self.gen_sim), copy.deepcopy(self.gen_real)
        for net in self.nets().values():
            net.to(self.device)
        for net in (self.ema_sim, self.ema_real):
            net.requires_grad_(False).eval()
        gen_params = list(self.gen_sim.parameters()) + list(self.gen_real.parameters())
        dis_params = list(self.dis_sim.parameters()) + list(self.dis_real.parameters())
        # Fused Adam: one kernel per update, and it skips an update whose gradients are not
        # finite on the device (found_inf), so the loop needs no host sync for that check.
        adam = dict(lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay, fused=True)
        self.opt_g = torch.optim.Adam(gen_params, **adam)
        self.opt_d = torch.optim.Adam(dis_params, **adam)
        self._init_label_terms(g)
        if self.world_size > 1:
            self._broadcast_weights()
        self.sched_g = torch.optim.lr_scheduler.StepLR(self.opt_g, o.lr_step, o.lr_gamma)
        self.sched_d = torch.optim.lr_scheduler.StepLR(self.opt_d, o.lr_step, o.lr_gamma)
        self.step = 0
        self.amp_dtype = autocast_dtype(cfg.train.precision, self.device)  # None: fp32
        self.precision = precision_name(self.amp_dtype)
        self._gen_fwd, self._dis_fwd = self._gen_forward, self._dis_forward
        if cfg.train.compile:
            self._gen_fwd = torch.compile(self._gen_forward)
            self._dis_fwd = torch.compile(self._dis_forward)
        self._log_acc: dict[str, torch.Tensor] = {}
        self._log_n = 0
        self.last_logged: dict[str, float] = {}

    def _init_label_terms(self, g: torch.Generator) -> None:
        """The optional semantic segmenter (own optimiser) and PatchNCE heads (trained with G)."""
        lw, m = self.cfg.loss, self.cfg.model
        self.nce_layers: tuple[int, ...] = ()
        if lw.nce > 0:
            n = len(self.gen_sim.enc.net)
            self.nce_layers = tuple(range(m.n_downsample + 1)) + (n - 1,)
            chans = [m.gen_dim * 2 ** i for i in range(m.n_downsample + 1)]
            chans.append(m.content_channels or m.gen_dim * 2 ** m.n_downsample)
            self.nce_heads = PatchHeads(chans)
            init_weights(self.nce_heads, g, "normal")
            self.nce_heads.to(self.device)
            self.opt_g.add_param_group({"params": list(self.nce_heads.parameters())})
        if lw.semantic > 0:
            from ..segment.unet import UNet

            self.seg = UNet(SEMANTIC_CLASSES, base=lw.semantic_base, depth=3, norm="group")
            init_weights(self.seg, g)
            self.seg.to(self.device)
            self.opt_seg = torch.optim.Adam(self.seg.parameters(), lr=1e-3, betas=(0.9, 0.999), fused=True)

    def nets(self) -> dict[str, nn.Module]:
        nets = {"gen_sim": self.gen_sim, "gen_real": self.gen_real, "dis_sim": self.dis_sim,
                "dis_real": self.dis_real, "ema_sim": self.ema_sim, "ema_real": self.ema_real}
        if self.nce_heads is not None:
            nets["nce_heads"] = self.nce_heads
        if self.seg is not None:
            nets["semantic_seg"] = self.seg
        return nets

    # ---------------------------------------------------------------- one step

    def _autocast(self):
        return autocast(self.device, self.amp_dtype)

    def draw_batch(self, step: int, labels: bool | None = None) -> dict:
        """This process's share of the global batch of ``step``: sim and real crops (B, 3, h, w)
        in [-1, 1], random style codes (B, style_dim), encoder noise (or None), style-source coin;
        with ``labels`` (default: when the semantic term is on) also ``ys``, the sim crops' label
        ids (B, h, w) aligned with them."""
        t, d, m = self.cfg.train, self.cfg.data, self.cfg.model
        labels = self.seg is not None if labels is None else labels
        use_real = bool(step_seed(t.seed, step).random() < self.cfg.loss.style_from_real_prob)
        xs, ys, xr, s_rand, n_r, n_s2r = [], [], [], [], [], []
        for i in range(t.batch_size):
            rng = item_seed(t.seed, step, self.rank * t.batch_size + i)
            if labels:
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
        return {"xs": torch.stack(xs), "xr": torch.stack(xr), "s_rand": torch.stack(s_rand),
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

    def _gen_forward(self, xs, xr, s_rand, use_real_style, noise_r, noise_s2r):
        """Every image and code of a step. Decodes that share a network run as one batched
        call: same values per item (every norm is per sample), fewer and larger kernels."""
        b = xs.shape[0]
        c_s = self.gen_sim.encode(xs)
        c_r, s_r = self.gen_real.encode(xr, noise_r)
        # Half the steps translate with the current real image's style, half with N(0, I).
        s_t = torch.where(use_real_style, s_r.detach(), s_rand)
        xs_rec, x_r2s = self.gen_sim.decode(torch.cat([c_s, c_r])).split(b)
        xr_rec, x_s2r = self.gen_real.decode(torch.cat([c_r, c_s]), torch.cat([s_r, s_t])).split(b)
        c_s_rec, s_t_rec = self.gen_real.encode(x_s2r, noise_s2r)
        c_r_rec = self.gen_sim.encode(x_r2s)
        x_s2r2s = self.gen_sim.decode(c_s_rec)
        x_r2s2r = self.gen_real.decode(c_r_rec, s_r)
        return dict(c_s=c_s, c_r=c_r, s_t=s_t, xs_rec=xs_rec, xr_rec=xr_rec, x_s2r=x_s2r, x_r2s=x_r2s,
                    c_s_rec=c_s_rec, s_t_rec=s_t_rec, c_r_rec=c_r_rec, x_s2r2s=x_s2r2s, x_r2s2r=x_r2s2r)

    def _dis_forward(self, xs, xr, x_s2r, x_r2s):
        """Discriminator scores of real images and fakes, one call per discriminator.

        A function of its own (compiled apart from the generators): the discriminator
        loss's backward then stops at the fakes instead of running a compiled generator
        backward a second time.
        """
        b = xs.shape[0]
        d_real = [d.split(b) for d in self.dis_real(torch.cat([xr, x_s2r]))]
        d_sim = [d.split(b) for d in self.dis_sim(torch.cat([xs, x_r2s]))]
        return dict(d_r=[d[0] for d in d_real], d_s2r=[d[1] for d in d_real],
                    d_s=[d[0] for d in d_sim], d_r2s=[d[1] for d in d_sim])

    def train_step(self) -> dict[str, torch.Tensor]:
        """One generator update and one discriminator update (on the same fakes).

        Returns the step's losses as 0-d tensors (no host sync; ``float()`` them when needed).
        The discriminators score the fakes once: the generator loss back-propagates
        through those scores into the generators only (``inputs=``), the discriminator
        loss into the discriminators only, which is what the MUNIT order (generator
        update, then a discriminator forward on the detached fakes) computes: the
        discriminators have not changed in between, and the fakes are the same.
        """
        dev = self.device
        b = {k: (v.to(dev, non_blocking=True) if v is not None else None) for k, v in self.draw_batch(self.step).items()}
        for net in (self.gen_sim, self.gen_real, self.dis_sim, self.dis_real):
            net.train()
        g_loss, d_loss, parts = self.losses(b)
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        g_loss.backward(inputs=self._params(self.opt_g), retain_graph=True)
        d_loss.backward(inputs=self._params(self.opt_d))
        skip_g = self._step(self.opt_g)
        skip_d = self._step(self.opt_d)
        if self.seg is not None:  # the judge trains on the renders only (never on translations)
            with self._autocast():
                seg_logits = self.seg(b["xs"])
            seg_loss = semantic_loss(seg_logits, b["ys"])
            self.opt_seg.zero_grad(set_to_none=True)
            seg_loss.backward(inputs=self._params(self.opt_seg))
            skip_d = torch.maximum(skip_d, self._step(self.opt_seg))
            parts["semantic_seg"] = seg_loss

        self.sched_g.step()
        self.sched_d.step()
        self._update_ema()
        self.step += 1
        return {"d": d_loss.detach(), "g": g_loss.detach(), **{k: v.detach() for k, v in parts.items()},
                "skipped": torch.maximum(skip_g, skip_d)}

    def losses(self, b: dict) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(generator loss, discriminator loss, the generator loss terms before weighting) of a batch from
        :meth:`draw_batch` (on the device)."""
        cfg, lw = self.cfg, self.cfg.loss
        xs, xr = b["xs"], b["xr"]
        with self._autocast():
            o = self._gen_fwd(xs, xr, b["s_rand"], b["use_real"], b["noise_r"], b["noise_s2r"])
            o.update(self._dis_fwd(xs, xr, o["x_s2r"], o["x_r2s"]))
        # Losses in fp32 whatever the autocast dtype.
        parts = {
            "gan": gan_g_loss(o["d_s2r"], cfg.model.gan_type) + gan_g_loss(o["d_r2s"], cfg.model.gan_type),
            "recon_x": l1(o["xs_rec"], xs) + l1(o["xr_rec"], xr),
            "recon_c": l1(o["c_s_rec"], o["c_s"]) + l1(o["c_r_rec"], o["c_r"]),
            "recon_s": l1(o["s_t_rec"], o["s_t"]),
            "cycle": l1(o["x_s2r2s"], xs) + l1(o["x_r2s2r"], xr),
            "struct_s2r": structure_loss(xs, o["x_s2r"]),
            "struct_r2s": structure_loss(xr, o["x_r2s"]),
        }
        if self.nce_heads is not None:
            # the encoder passes under autocast like every network call; the heads and the loss in fp32
            with self._autocast():
                q = encoder_features(self.gen_sim.enc, o["x_s2r"], self.nce_layers)
                with torch.no_grad():
                    k = encoder_features(self.gen_sim.enc, xs, self.nce_layers)
            # patch positions drawn from the step's seed: the same on every process
            tg = torch.Generator().manual_seed(int(step_seed(cfg.train.seed, self.step).integers(2 ** 62)))
            parts["nce"] = patch_nce_loss(q, k, self.nce_heads, lw.nce_patches, lw.nce_tau, tg)
        if self.seg is not None:
            # the judge's weights get no gradient from this (backward takes inputs= the generators')
            with self._autocast():
                judged = self.seg(o["x_s2r"])
            sem = semantic_loss(judged, b["ys"])
            # the segmenter learns alone first: its early verdicts are noise
            parts["semantic"] = sem if self.step >= lw.semantic_warmup else sem.detach()
        g_loss = sum(getattr(lw, k) * v for k, v in parts.items())
        d_loss = lw.gan * (gan_d_loss(o["d_r"], o["d_s2r"], cfg.model.gan_type)
                           + gan_d_loss(o["d_s"], o["d_r2s"], cfg.model.gan_type))
        return g_loss, d_loss, parts

    @staticmethod
    def _params(opt) -> list[torch.Tensor]:
        return [p for g in opt.param_groups for p in g["params"]]

    def _step(self, opt) -> torch.Tensor:
        """Average the gradients over processes and update, unless one is inf/NaN; 1.0 if skipped.

        The check stays on the device: fused Adam reads ``found_inf`` and leaves weights,
        moments and its step count unchanged when it is set.
        """
        grads = [p.grad for p in self._params(opt) if p.grad is not None]
        if self.world_size > 1:
            import torch.distributed as dist

            flat = torch._utils._flatten_dense_tensors(grads)
            dist.all_reduce(flat)
            flat /= self.world_size
            for g, r in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
                g.copy_(r)
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        found_inf = (~torch.isfinite(norm)).float()
        opt.found_inf = found_inf
        opt.step()
        return found_inf

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up so short runs get a useful average: decay grows towards ema_decay.
        decay = min(self.cfg.train.ema_decay, (1 + self.step) / (10 + self.step))
        for src, dst in ((self.gen_sim, self.ema_sim), (self.gen_real, self.ema_real)):
            torch._foreach_lerp_(list(dst.parameters()), [p.detach() for p in src.parameters()], 1 - decay)
            for b, c in zip(src.buffers(), dst.buffers()):
                c.copy_(b)

    # ---------------------------------------------------------------- state

    def state(self) -> dict:
        """Everything needed to resume exactly, as a ``weights_only``-loadable dict."""
        return {
            "kind": "train",
            "config": self.cfg.to_dict(),
            "step": self.step,
            "real_videos": list(self.real_videos),
            "model": {k: v.state_dict() for k, v in self.nets().items() if not k.startswith("ema")},
            "ema": {"gen_sim": self.ema_sim.state_dict(), "gen_real": self.ema_real.state_dict()},
            "optim": {"gen": self.opt_g.state_dict(), "dis": self.opt_d.state_dict(),
                      "sched_gen": self.sched_g.state_dict(), "sched_dis": self.sched_d.state_dict(),
                      **({"seg": self.opt_seg.state_dict()} if self.opt_seg is not None else {})},
            "rng": rng_state(),
            "world_size": self.world_size,
        }

    def load_state(self, ck: dict) -> None:
        path = ck.get("path", "checkpoint")
        extra = [k for k in ("nce_heads", "semantic_seg") if k in self.nets()]
        for k in ("gen_sim", "gen_real", "dis_sim", "dis_real", *extra):
            if k not in ck["model"]:
                from .checkpoint import CheckpointError

                raise CheckpointError(f"checkpoint {path} lacks the {k} weights; it was modified")
            load_state(self.nets()[k], ck["model"][k], k, path)
        load_state(self.ema_sim, ck["ema"]["gen_sim"], "ema_sim", path)
        load_state(self.ema_real, ck["ema"]["gen_real"], "ema_real", path)
        try:
            self.opt_g.load_state_dict(_fused(ck["optim"]["gen"]))
            self.opt_d.load_state_dict(_fused(ck["optim"]["dis"]))
            self.sched_g.load_state_dict(ck["optim"]["sched_gen"])
            self.sched_d.load_state_dict(ck["optim"]["sched_dis"])
            if self.opt_seg is not None:
                self.opt_seg.load_state_dict(ck["optim"]["seg"])
        except (KeyError, ValueError, RuntimeError) as exc:
            from ..errors import one_line
            from .checkpoint import CheckpointError

            raise CheckpointError(f"checkpoint {path}: optimiser state does not fit ({one_line(exc)}); "
                                  f"it was modified or mixes runs") from None
        self.step = int(ck["step"])
        self.real_videos = sort_videos(set(self.real_videos) | set(ck.get("real_videos", [])))
        set_rng_state(ck.get("rng", {}))

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the checkpoint (rank 0 only; other processes hold the same weights)."""
        path = Path(path) if path is not None else self.run_dir / CHECKPOINT_NAME
        if self.rank != 0:
            return path
        return save_checkpoint(path, self.state())

    def _broadcast_weights(self) -> None:
        """Every process starts from rank 0's weights (they are seeded alike; this makes it certain)."""
        import torch.distributed as dist

        for net in self.nets().values():
            for t in [*net.parameters(), *net.buffers()]:
                dist.broadcast(t.data, 0)

    # ---------------------------------------------------------------- outputs

    def _fixed_images(self, source, n: int, stride_seed: int) -> torch.Tensor:
        """``n`` evenly spaced images, resized and centre-cropped to the training crop, in [-1, 1]."""
        ch, cw = (int(c) for c in self.cfg.data.crop)
        idx = np.linspace(0, len(source) - 1, n).round().astype(int)
        out = []
        short = work_short(self.cfg.data, "sim" if source is self.sim else "real")
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
    def sample_grid(self) -> np.ndarray:
        """Rows of sim | K translations (EMA generator, fixed styles) | real, as uint8 (H, W, 3)."""
        t = self.cfg.train
        xs = self._fixed_images(self.sim, t.sample_rows, 0).to(self.device)
        xr = self._fixed_images(self.real, t.sample_rows, 1).to(self.device)
        g = torch.Generator().manual_seed(int(t.seed) + 12345)
        styles = torch.randn(1, t.sample_k, self.cfg.model.style_dim, generator=g)
        styles = styles.expand(xs.shape[0], -1, -1).to(self.device)
        with self._autocast():
            y = self.ema_real.decode_multi(self.ema_sim.encode(xs), styles).float()
        rows = [torch.cat([xs[i], *y[i], xr[i]], dim=2) for i in range(xs.shape[0])]
        grid = torch.cat(rows, dim=1)
        return ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()

    def write_sample_grid(self) -> Path:
        path = self.run_dir / SAMPLES_DIR / f"step_{self.step:07d}.png"
        if self.rank != 0:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write_png(tmp, self.sample_grid())
        return path

    def _log(self, losses: dict[str, torch.Tensor]) -> dict[str, float] | None:
        """Accumulate on the device; every ``log_every`` steps write the means (over steps and,
        with several processes, over processes) and return them. The one host sync is there."""
        for k, v in losses.items():
            self._log_acc[k] = self._log_acc[k] + v if k in self._log_acc else v.clone()
        self._log_n += 1
        if self.step % self.cfg.train.log_every == 0:
            return self._flush_log()
        return None

    def _flush_log(self) -> dict[str, float] | None:
        """Append the mean losses since the last line (no-op when there are none)."""
        if not self._log_n:
            return None
        keys = list(self._log_acc)
        vals = torch.stack([self._log_acc[k].float() for k in keys]) / self._log_n
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(vals)
            vals /= self.world_size
        means = dict(zip(keys, vals.tolist()))
        rec = {"step": self.step, "time": round(time.time(), 3), "lr": self.sched_g.get_last_lr()[0], **means}
        if self.rank == 0:
            with open(self.run_dir / LOSS_LOG, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self._log_acc, self._log_n = {}, 0
        self.last_logged = means
        return means

    def _truncate_log(self) -> None:
        """Drop log lines past the resumed step (written after the last checkpoint)."""
        p = self.run_dir / LOSS_LOG
        if not p.is_file():
            return
        keep = [ln for ln in p.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= self.step]
        with atomic_path(p) as tmp:
            tmp.write_text("".join(ln + "\n" for ln in keep))

    # ---------------------------------------------------------------- loop

    def fit(self, max_iter: int | None = None, progress=None, on_step=None) -> str:
        """Train until ``max_iter``; returns ``"done"`` or ``"interrupted"`` (Ctrl-C, checkpoint saved).

        Ctrl-C is honoured between steps so the saved checkpoint is consistent; a second
        Ctrl-C aborts at once. With several processes the stop is agreed on every
        ``STOP_EVERY`` steps (all processes stop at the same step), and SIGTERM (what
        torchrun sends its workers) counts as Ctrl-C. Losses are checked for NaN/inf at log
        steps only: the check is a host sync.
        """
        t = self.cfg.train
        max_iter = t.max_iter if max_iter is None else max_iter
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.run_dir / "config.json", {**self.cfg.to_dict(), "world_size": self.world_size,
                                                             "real_videos": list(self.real_videos)})
            self._truncate_log()
        status = "done"
        with _deferred_interrupt(sigterm=self.world_size > 1) as stop:
            while self.step < max_iter:
                losses = self.train_step()
                logged = self._log(losses)
                if logged is not None and not all(math.isfinite(v) for v in logged.values()):
                    from ..errors import Sim2RealError

                    self.save(self.run_dir / "checkpoint_nonfinite.pt")
                    raise Sim2RealError(f"training diverged by step {self.step} (mean losses {logged}); "
                                        f"lower optim.lr or use --precision fp32, then resume from "
                                        f"{self.run_dir / CHECKPOINT_NAME}")
                if self.step % t.sample_every == 0:
                    self.write_sample_grid()
                if self.step % t.checkpoint_every == 0:
                    self.save()
                if progress is not None:
                    post = {} if logged is None else {"d": logged["d"], "g": logged["g"],
                                                      "struct": logged["struct_s2r"]}
                    progress.update(1, **post)
                if on_step is not None:
                    on_step(self)
                if self._should_stop(stop["hit"]):
                    status = "interrupted"
                    break
            self._flush_log()
            if self.step % t.checkpoint_every or status == "interrupted":
                self.save()
            if self.step % t.sample_every:
                self.write_sample_grid()
        return status

    STOP_EVERY = 10

    def _should_stop(self, hit: bool) -> bool:
        if self.world_size == 1:
            return hit
        if self.step % self.STOP_EVERY:
            return False
        import torch.distributed as dist

        flag = torch.tensor([float(hit)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def _fused(opt_state: dict) -> dict:
    """An optimiser state dict loaded as fused Adam (checkpoints of older versions were not fused)."""
    groups = [{**g, "fused": True, "foreach": None} for g in opt_state["param_groups"]]
    return {**opt_state, "param_groups": groups}


@contextmanager
def _deferred_interrupt(sigterm: bool = False):
    """Turn the first SIGINT (and SIGTERM if asked) into a flag checked between steps (main thread only)."""
    state = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["hit"]:
            raise KeyboardInterrupt
        state["hit"] = True

    sigs = (signal.SIGINT, signal.SIGTERM) if sigterm else (signal.SIGINT,)
    old = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield state
    finally:
        for s, h in old.items():
            signal.signal(s, h)
