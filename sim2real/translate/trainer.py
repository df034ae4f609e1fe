"""The training loop: one generator and one discriminator update per step, EMA, checkpoints.

A reader's map of the pieces, in the order a step uses them:

- :mod:`.batches`: what step ``t`` draws (seeded by ``(seed, t, item)``), prepared ahead
  by DataLoader workers; resuming at step N draws exactly what a straight run would;
- :mod:`.step_losses`: the forward passes and the losses of a step;
- :mod:`.distributed`: several processes (``torchrun``) average their gradients;
- :mod:`.run_state`: the checkpoint's contents, and back;
- :mod:`.run_log`: the loss log and the sample grids;
- :mod:`.signals`: Ctrl-C stops between steps, after a checkpoint;
- :mod:`.device`: the device and the mixed-precision rule.

Rank 0 alone writes checkpoints, logs and sample grids.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import torch
from torch import nn

from ..classes import FIRST_EXTRA_ID
from ..io import write_json_atomic
from .batches import StepBatches, iterate_batches, to_device
from .checkpoint import CHECKPOINT_NAME, save_checkpoint
from .config import TranslatorConfig
from .data import RealFrames, SimImages, fit_to_renders
from .device import autocast, autocast_dtype, dist_info, pick_device, precision_name
from .discriminators import MultiScaleDiscriminator
from .distributed import any_process, average_gradients, broadcast_weights
from .bilateral import make_generators, nce_spec
from .losses import PatchHeads, semantic_loss
from .run_log import LossLog, sample_grid, write_grid
from .run_state import load_run_state, run_state
from .signals import deferred_interrupt
from .step_losses import discriminator_pass, generator_pass, step_losses

SEMANTIC_CLASSES = FIRST_EXTRA_ID  # the judge predicts the base class ids (a preset's extras: background)


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
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop sizes: the autotuned kernels are reused
        self.rank, self.world_size = dist_info()
        self.amp_dtype = autocast_dtype(cfg.train.precision, self.device)  # None: fp32
        self.precision = precision_name(self.amp_dtype)
        self._build_networks()
        self.step = 0
        self.gen_fwd = lambda *a: generator_pass(self, *a)
        self.dis_fwd = lambda *a: discriminator_pass(self, *a)
        if cfg.train.compile:
            self.gen_fwd, self.dis_fwd = torch.compile(self.gen_fwd), torch.compile(self.dis_fwd)
        self.log = LossLog(self.run_dir, cfg.train.log_every, self.rank, self.world_size)

    def _build_networks(self) -> None:
        """Networks seeded by ``train.seed``, EMA copies, fused Adam, step-decay schedules."""
        m, o, lw = self.cfg.model, self.cfg.optim, self.cfg.loss
        g = torch.Generator().manual_seed(int(self.cfg.train.seed))
        self.gen_sim, self.gen_real = make_generators(m)
        self.dis_sim, self.dis_real = MultiScaleDiscriminator(m), MultiScaleDiscriminator(m)
        for net in (self.gen_sim, self.gen_real, self.dis_sim, self.dis_real):
            init_weights(net, g)
        self.ema_sim, self.ema_real = copy.deepcopy(self.gen_sim), copy.deepcopy(self.gen_real)
        for net in (self.ema_sim, self.ema_real):
            net.requires_grad_(False).eval()
        # The optional label-aware terms: PatchNCE heads (trained with G) and the semantic
        # segmenter (its own optimiser). Built in this order: the seeded draws stay put.
        self.seg = self.nce_heads = self.opt_seg = None
        self.nce_layers: tuple[int, ...] = ()
        if lw.nce > 0:
            self.nce_layers, chans = nce_spec(m)
            self.nce_heads = PatchHeads(chans)
            init_weights(self.nce_heads, g, "normal")
        if lw.semantic > 0:
            from ..segment.unet import UNet

            self.seg = UNet(SEMANTIC_CLASSES, base=lw.semantic_base, depth=3, norm="group")
            init_weights(self.seg, g)
        for net in self.nets().values():
            net.to(self.device)
        # Fused Adam: one kernel per update, and it skips an update whose gradients are not
        # finite on the device (found_inf), so the loop needs no host sync for that check.
        adam = dict(lr=o.lr, betas=(o.beta1, o.beta2), weight_decay=o.weight_decay, fused=True)
        gen_params = list(self.gen_sim.parameters()) + list(self.gen_real.parameters())
        self.opt_g = torch.optim.Adam(gen_params, **adam)
        self.opt_d = torch.optim.Adam(list(self.dis_sim.parameters()) + list(self.dis_real.parameters()), **adam)
        if self.nce_heads is not None:
            self.opt_g.add_param_group({"params": list(self.nce_heads.parameters())})
        if self.seg is not None:
            self.opt_seg = torch.optim.Adam(self.seg.parameters(), lr=1e-3, betas=(0.9, 0.999), fused=True)
        broadcast_weights(self.nets().values(), self.world_size)
        self.sched_g = torch.optim.lr_scheduler.StepLR(self.opt_g, o.lr_step, o.lr_gamma)
        self.sched_d = torch.optim.lr_scheduler.StepLR(self.opt_d, o.lr_step, o.lr_gamma)

    def nets(self) -> dict[str, nn.Module]:
        nets = {"gen_sim": self.gen_sim, "gen_real": self.gen_real, "dis_sim": self.dis_sim,
                "dis_real": self.dis_real, "ema_sim": self.ema_sim, "ema_real": self.ema_real}
        if self.nce_heads is not None:
            nets["nce_heads"] = self.nce_heads
        if self.seg is not None:
            nets["semantic_seg"] = self.seg
        return nets

    def autocast(self):
        """The run's mixed precision (:mod:`.device`) on its device."""
        return autocast(self.device, self.amp_dtype)

    # ---------------------------------------------------------------- one step

    def batches(self) -> StepBatches:
        """This process's batches (``batches()[step]``), with labels when the semantic term is on."""
        return StepBatches(self.cfg, self.sim, self.real, self.rank, labels=self.seg is not None)

    def draw_batch(self, step: int, labels: bool | None = None) -> dict:
        """This process's share of the global batch of ``step`` (see :class:`.batches.StepBatches`)."""
        labels = self.seg is not None if labels is None else labels
        return StepBatches(self.cfg, self.sim, self.real, self.rank, labels)[step]

    def train_step(self, batch: dict | None = None) -> dict[str, torch.Tensor]:
        """One generator update and one discriminator update (on the same fakes), on
        ``batch`` (default: :meth:`draw_batch` of the current step).

        Returns the step's losses as 0-d tensors (no host sync; ``float()`` them when needed).
        The discriminators score the fakes once: the generator loss back-propagates
        through those scores into the generators only (``inputs=``), the discriminator
        loss into the discriminators only, which is what the MUNIT order (generator
        update, then a discriminator forward on the detached fakes) computes: the
        discriminators have not changed in between, and the fakes are the same.
        """
        b = to_device(self.draw_batch(self.step) if batch is None else batch, self.device)
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
            with self.autocast():
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
        """(generator loss, discriminator loss, the unweighted terms) of a batch on the device."""
        return step_losses(self, b)

    @staticmethod
    def _params(opt) -> list[torch.Tensor]:
        return [p for g in opt.param_groups for p in g["params"]]

    def _step(self, opt) -> torch.Tensor:
        """Average the gradients over processes and update, unless one is inf/NaN; 1.0 if skipped.

        The check stays on the device: fused Adam reads ``found_inf`` and leaves weights,
        moments and its step count unchanged when it is set.
        """
        grads = [p.grad for p in self._params(opt) if p.grad is not None]
        average_gradients(grads, self.world_size)
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

    # ---------------------------------------------------------------- state and outputs

    def state(self) -> dict:
        """Everything needed to resume exactly, as a ``weights_only``-loadable dict."""
        return run_state(self)

    def load_state(self, ck: dict) -> None:
        load_run_state(self, ck)

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the checkpoint (rank 0 only; other processes hold the same weights)."""
        path = Path(path) if path is not None else self.run_dir / CHECKPOINT_NAME
        if self.rank != 0:
            return path
        return save_checkpoint(path, self.state())

    def sample_grid(self):
        """Rows of sim | K translations (EMA generator, fixed styles) | real, as uint8 (H, W, 3)."""
        return sample_grid(self.cfg, self.ema_sim, self.ema_real, self.sim, self.real, self.device, self.autocast)

    def write_sample_grid(self) -> Path | None:
        if self.rank != 0:
            return None
        return write_grid(self.run_dir, self.step, self.sample_grid())

    # ---------------------------------------------------------------- loop

    STOP_EVERY = 10

    def fit(self, max_iter: int | None = None, progress=None, on_step=None) -> str:
        """Train until ``max_iter``; returns ``"done"`` or ``"interrupted"`` (Ctrl-C, checkpoint saved).

        Batches come from ``train.workers`` DataLoader processes (0: drawn in this loop).
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
            self.log.truncate(self.step)
        status = "done"
        batches = iterate_batches(self.batches(), self.step, max_iter, t.workers,
                                  pin_memory=self.device.type == "cuda", prefetch=t.prefetch)
        try:
            with deferred_interrupt(sigterm=self.world_size > 1) as stop:
                while self.step < max_iter:
                    losses = self.train_step(next(batches))
                    logged = self.log.add(losses, self.step, self.sched_g.get_last_lr()[0])
                    if logged is not None and not all(math.isfinite(v) for v in logged.values()):
                        self._diverged(logged)
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
                self.log.flush(self.step, self.sched_g.get_last_lr()[0])
                if self.step % t.checkpoint_every or status == "interrupted":
                    self.save()
                if self.step % t.sample_every:
                    self.write_sample_grid()
        finally:
            batches.close()  # stops the batch workers
        return status

    def _diverged(self, logged: dict) -> None:
        from ..errors import Sim2RealError

        self.save(self.run_dir / "checkpoint_nonfinite.pt")
        raise Sim2RealError(f"training diverged by step {self.step} (mean losses {logged}); "
                            f"lower optim.lr or use --precision fp32, then resume from "
                            f"{self.run_dir / CHECKPOINT_NAME}")

    def _should_stop(self, hit: bool) -> bool:
        if self.world_size > 1 and self.step % self.STOP_EVERY:
            return False
        return any_process(hit, self.device, self.world_size)
