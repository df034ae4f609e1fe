"""The training loop: one generator and one discriminator update per step, EMA, checkpoints.

Randomness: the data drawn, the augmentation, the style codes and the encoder noise of
step ``t`` all come from generators seeded with ``(seed, t)``; so resuming from a
checkpoint at step N and training to 2N gives the same weights as training 2N straight.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..io import atomic_path, write_json_atomic, write_png
from .checkpoint import CHECKPOINT_NAME, load_state, rng_state, save_checkpoint, set_rng_state
from .config import TranslatorConfig, work_short
from .data import RealFrames, SimImages, augment, resize_short, to_tensor
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
    return np.random.default_rng([int(seed), int(step), 0x5EED])


def pick_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        from ..errors import Sim2RealError

        raise Sim2RealError("--device cuda requested but PyTorch sees no CUDA GPU; use --device cpu")
    return torch.device(device)


class Trainer:
    """Holds the four networks, two EMA generators, optimisers and the step counter."""

    def __init__(self, cfg: TranslatorConfig, sim: SimImages | None, real: RealFrames | None,
                 run_dir: str | os.PathLike | None = None, device: str | None = "cpu"):
        self.cfg = cfg
        self.sim, self.real = sim, real
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.device = pick_device(device)
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
        adam = dict(lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay)
        self.opt_g = torch.optim.Adam(gen_params, **adam)
        self.opt_d = torch.optim.Adam(dis_params, **adam)
        if cfg.data.load_size == 0 and cfg.data.native_short == 0 and sim is not None:
            cfg.data.native_short = sim.short_side()  # recorded in the run's config
        self._init_label_terms(g, adam, gen_params)
        self.sched_g = torch.optim.lr_scheduler.StepLR(self.opt_g, o.lr_step, o.lr_gamma)
        self.sched_d = torch.optim.lr_scheduler.StepLR(self.opt_d, o.lr_step, o.lr_gamma)
        self.step = 0
        self.use_bf16 = self.device.type == "cuda" and cfg.train.precision == "bf16"
        self._gen_fwd, self._dis_fwd = self._gen_forward, self._dis_forward
        if cfg.train.compile:
            self._gen_fwd = torch.compile(self._gen_forward)
            self._dis_fwd = torch.compile(self._dis_forward)
        self._log_acc: dict[str, float] = {}
        self._log_n = 0

    def _init_label_terms(self, g: torch.Generator, adam: dict, gen_params: list) -> None:
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

            self.seg = UNet(SEMANTIC_CLASSES, base=lw.semantic_base, depth=3)
            init_weights(self.seg, g)
            self.seg.to(self.device)
            self.opt_seg = torch.optim.Adam(self.seg.parameters(), lr=1e-3, betas=(0.9, 0.999))

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
        if self.use_bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def draw_batch(self, step: int, labels: bool = False):
        """The (sim, real) training crops of ``step``, (B, 3, h, w) in [-1, 1], and the rng;
        with ``labels`` also the sim crops' label ids (B, h, w) aligned with them."""
        t, d = self.cfg.train, self.cfg.data
        rng = step_seed(t.seed, step)
        sims = [self._draw(self.sim, rng, d.fov_prob_sim, work_short(d, "sim"), labels) for _ in range(t.batch_size)]
        xr = [self._draw(self.real, rng, d.fov_prob_real, work_short(d, "real")) for _ in range(t.batch_size)]
        if labels:
            return torch.stack([x for x, _ in sims]), torch.stack(xr), rng, torch.stack([y for _, y in sims])
        return torch.stack(sims), torch.stack(xr), rng

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
        c_s = self.gen_sim.encode(xs)
        c_r, s_r = self.gen_real.encode(xr, noise_r)
        # Half the steps translate with the current real image's style, half with N(0, I).
        s_t = torch.where(use_real_style, s_r.detach(), s_rand)
        xs_rec = self.gen_sim.decode(c_s)
        xr_rec = self.gen_real.decode(c_r, s_r)
        x_s2r = self.gen_real.decode(c_s, s_t)
        x_r2s = self.gen_sim.decode(c_r)
        c_s_rec, s_t_rec = self.gen_real.encode(x_s2r, noise_s2r)
        c_r_rec = self.gen_sim.encode(x_r2s)
        x_s2r2s = self.gen_sim.decode(c_s_rec)
        x_r2s2r = self.gen_real.decode(c_r_rec, s_r)
        return dict(c_s=c_s, c_r=c_r, s_t=s_t, xs_rec=xs_rec, xr_rec=xr_rec, x_s2r=x_s2r, x_r2s=x_r2s,
                    c_s_rec=c_s_rec, s_t_rec=s_t_rec, c_r_rec=c_r_rec, x_s2r2s=x_s2r2s, x_r2s2r=x_r2s2r,
                    d_s2r=self.dis_real(x_s2r), d_r2s=self.dis_sim(x_r2s))

    def _dis_forward(self, xs, xr, x_s2r, x_r2s):
        return (self.dis_real(xr), self.dis_real(x_s2r), self.dis_sim(xs), self.dis_sim(x_r2s))

    def train_step(self) -> dict[str, float]:
        """One generator update then one discriminator update (on the same, detached fakes)."""
        cfg, lw = self.cfg, self.cfg.loss
        use_sem = self.seg is not None
        if use_sem:
            xs, xr, rng, ys = self.draw_batch(self.step, labels=True)
            ys = ys.to(self.device)
        else:
            xs, xr, rng = self.draw_batch(self.step)
        tg = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        b = xs.shape[0]
        use_real = torch.tensor(bool(rng.random() < lw.style_from_real_prob))
        s_rand = torch.randn(b, cfg.model.style_dim, generator=tg)
        noise_r = noise_s2r = None
        if cfg.model.real_input_noise > 0:
            noise_r = torch.randn(xr.shape, generator=tg)
            noise_s2r = torch.randn(xs.shape, generator=tg)
        dev = self.device
        xs, xr, s_rand, use_real = xs.to(dev), xr.to(dev), s_rand.to(dev), use_real.to(dev)
        noise_r = noise_r.to(dev) if noise_r is not None else None
        noise_s2r = noise_s2r.to(dev) if noise_s2r is not None else None

        for net in (self.gen_sim, self.gen_real, self.dis_sim, self.dis_real):
            net.train()
        self.dis_sim.requires_grad_(False)
        self.dis_real.requires_grad_(False)
        with self._autocast():
            o = self._gen_fwd(xs, xr, s_rand, use_real, noise_r, noise_s2r)
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
            q = encoder_features(self.gen_sim.enc, o["x_s2r"], self.nce_layers)
            with torch.no_grad():
                k = encoder_features(self.gen_sim.enc, xs, self.nce_layers)
            parts["nce"] = patch_nce_loss(q, k, self.nce_heads, lw.nce_patches, lw.nce_tau, tg)
        if use_sem:
            self.seg.requires_grad_(False)
            sem = semantic_loss(self.seg(o["x_s2r"]), ys)
            # the segmenter learns alone first: its early verdicts are noise
            parts["semantic"] = sem if self.step >= lw.semantic_warmup else sem.detach()
        g_loss = sum(getattr(lw, k) * v for k, v in parts.items())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        skipped = not self._finite_grads(self.opt_g)
        if not skipped:
            self.opt_g.step()

        self.dis_sim.requires_grad_(True)
        self.dis_real.requires_grad_(True)
        with self._autocast():
            d_r, d_f_r, d_s, d_f_s = self._dis_fwd(xs, xr, o["x_s2r"].detach(), o["x_r2s"].detach())
        d_loss = lw.gan * (gan_d_loss(d_r, d_f_r, cfg.model.gan_type) + gan_d_loss(d_s, d_f_s, cfg.model.gan_type))
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        if self._finite_grads(self.opt_d):
            self.opt_d.step()
        else:
            skipped = True

        if use_sem:  # the judge trains on the renders only (never on translations)
            self.seg.requires_grad_(True)
            seg_loss = semantic_loss(self.seg(xs), ys)
            self.opt_seg.zero_grad(set_to_none=True)
            seg_loss.backward()
            if self._finite_grads(self.opt_seg):
                self.opt_seg.step()
            parts["semantic_seg"] = seg_loss.detach()

        self.sched_g.step()
        self.sched_d.step()
        self._update_ema()
        self.step += 1
        out = {"d": float(d_loss.detach()), "g": float(g_loss.detach()),
               **{k: float(v.detach()) for k, v in parts.items()}, "skipped": float(skipped)}
        return out

    @staticmethod
    def _finite_grads(opt) -> bool:
        """False when any gradient is inf/NaN; that update is then skipped (and logged)."""
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, float("inf"))
        return bool(torch.isfinite(norm))

    @torch.no_grad()
    def _update_ema(self) -> None:
        # Warm-up so short runs get a useful average: decay grows towards ema_decay.
        decay = min(self.cfg.train.ema_decay, (1 + self.step) / (10 + self.step))
        for src, dst in ((self.gen_sim, self.ema_sim), (self.gen_real, self.ema_real)):
            for p, q in zip(src.parameters(), dst.parameters()):
                q.lerp_(p.detach(), 1 - decay)
            for b, c in zip(src.buffers(), dst.buffers()):
                c.copy_(b)

    # ---------------------------------------------------------------- state

    def state(self) -> dict:
        """Everything needed to resume exactly, as a ``weights_only``-loadable dict."""
        return {
            "kind": "train",
            "config": self.cfg.to_dict(),
            "step": self.step,
            "model": {k: v.state_dict() for k, v in self.nets().items() if not k.startswith("ema")},
            "ema": {"gen_sim": self.ema_sim.state_dict(), "gen_real": self.ema_real.state_dict()},
            "optim": {"gen": self.opt_g.state_dict(), "dis": self.opt_d.state_dict(),
                      "sched_gen": self.sched_g.state_dict(), "sched_dis": self.sched_d.state_dict(),
                      **({"seg": self.opt_seg.state_dict()} if self.opt_seg is not None else {})},
            "rng": rng_state(),
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
            self.opt_g.load_state_dict(ck["optim"]["gen"])
            self.opt_d.load_state_dict(ck["optim"]["dis"])
            self.sched_g.load_state_dict(ck["optim"]["sched_gen"])
            self.sched_d.load_state_dict(ck["optim"]["sched_dis"])
            if self.opt_seg is not None:
                self.opt_seg.load_state_dict(ck["optim"]["seg"])
        except (KeyError, ValueError, RuntimeError) as exc:
            from .checkpoint import CheckpointError

            raise CheckpointError(f"checkpoint {path}: optimiser state does not fit ({exc}); "
                                  f"it was modified or mixes runs") from None
        self.step = int(ck["step"])
        set_rng_state(ck.get("rng", {}))

    def save(self, path: str | os.PathLike | None = None) -> Path:
        path = Path(path) if path is not None else self.run_dir / CHECKPOINT_NAME
        return save_checkpoint(path, self.state())

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
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            write_png(tmp, self.sample_grid())
        return path

    def _log(self, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            self._log_acc[k] = self._log_acc.get(k, 0.0) + v
        self._log_n += 1
        if self.step % self.cfg.train.log_every == 0:
            self._flush_log()

    def _flush_log(self) -> None:
        """Append the mean losses since the last line (no-op when there are none)."""
        if self._log_n:
            rec = {"step": self.step, "time": round(time.time(), 3),
                   "lr": self.sched_g.get_last_lr()[0],
                   **{k: v / self._log_n for k, v in self._log_acc.items()}}
            with open(self.run_dir / LOSS_LOG, "a") as f:
                f.write(json.dumps(rec) + "\n")
            self._log_acc, self._log_n = {}, 0

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
        Ctrl-C aborts at once.
        """
        t = self.cfg.train
        max_iter = t.max_iter if max_iter is None else max_iter
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run_dir / "config.json", self.cfg.to_dict())
        self._truncate_log()
        status = "done"
        with _deferred_interrupt() as stop:
            while self.step < max_iter:
                losses = self.train_step()
                if not all(math.isfinite(v) for v in losses.values()):
                    from ..errors import Sim2RealError

                    self.save(self.run_dir / "checkpoint_nonfinite.pt")
                    raise Sim2RealError(f"training diverged at step {self.step} (losses {losses}); "
                                        f"lower optim.lr or use --precision fp32, then resume from "
                                        f"{self.run_dir / CHECKPOINT_NAME}")
                self._log(losses)
                if self.step % t.sample_every == 0:
                    self.write_sample_grid()
                if self.step % t.checkpoint_every == 0:
                    self.save()
                if progress is not None:
                    progress.update(1, d=losses["d"], g=losses["g"], struct=losses["struct_s2r"])
                if on_step is not None:
                    on_step(self)
                if stop["hit"]:
                    status = "interrupted"
                    break
            self._flush_log()
            if self.step % t.checkpoint_every or status == "interrupted":
                self.save()
            if self.step % t.sample_every:
                self.write_sample_grid()
        return status


@contextmanager
def _deferred_interrupt():
    """Turn the first SIGINT into a flag checked between steps (main thread only)."""
    state = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state["hit"]:
            raise KeyboardInterrupt
        state["hit"] = True

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, old)
