"""One training step's forward passes and losses (MUNIT + structure + optional PatchNCE and
semantic terms), given the networks of a :class:`~.trainer.Trainer`.

The networks run under the run's autocast (bf16 on a GPU); every loss is computed in fp32.
"""

from __future__ import annotations

import torch

from ..classes import INSTRUMENT_IDS
from .batches import step_seed
from .losses import (chroma_structure_loss, encoder_features, gan_d_loss, gan_g_loss, l1, mode_seeking_loss,
                     patch_nce_loss, semantic_loss, structure_loss)


def generator_pass(nets, xs, xr, s_rand, use_real_style, noise_r, noise_s2r) -> dict:
    """Every image and code of a step. Decodes that share a network run as one batched
    call: same values per item (every norm is per sample), fewer and larger kernels."""
    b = xs.shape[0]
    c_s = nets.gen_sim.encode(xs)
    c_r, s_r = nets.gen_real.encode(xr, noise_r)
    # Half the steps translate with the current real image's style, half with N(0, I).
    s_t = torch.where(use_real_style, s_r.detach(), s_rand)
    # the guide of each decode is the image being translated (the MUNIT family ignores it)
    xs_rec, x_r2s = nets.gen_sim.decode(torch.cat([c_s, c_r]), torch.cat([xs, xr])).split(b)
    xr_rec, x_s2r = nets.gen_real.decode(torch.cat([c_r, c_s]), torch.cat([s_r, s_t]), torch.cat([xr, xs])).split(b)
    c_s_rec, s_t_rec = nets.gen_real.encode(x_s2r, noise_s2r)
    c_r_rec = nets.gen_sim.encode(x_r2s)
    x_s2r2s = nets.gen_sim.decode(c_s_rec, x_s2r)
    x_r2s2r = nets.gen_real.decode(c_r_rec, s_r, x_r2s)
    return dict(c_s=c_s, c_r=c_r, s_t=s_t, xs_rec=xs_rec, xr_rec=xr_rec, x_s2r=x_s2r, x_r2s=x_r2s,
                c_s_rec=c_s_rec, s_t_rec=s_t_rec, c_r_rec=c_r_rec, x_s2r2s=x_s2r2s, x_r2s2r=x_r2s2r)


def discriminator_pass(nets, xs, xr, x_s2r, x_r2s) -> dict:
    """Discriminator scores of real images and fakes, one call per discriminator.

    A function of its own (compiled apart from the generators): the discriminator
    loss's backward then stops at the fakes instead of running a compiled generator
    backward a second time.
    """
    b = xs.shape[0]
    d_real = [d.split(b) for d in nets.dis_real(torch.cat([xr, x_s2r]))]
    d_sim = [d.split(b) for d in nets.dis_sim(torch.cat([xs, x_r2s]))]
    return dict(d_r=[d[0] for d in d_real], d_s2r=[d[1] for d in d_real],
                d_s=[d[0] for d in d_sim], d_r2s=[d[1] for d in d_sim])


def step_losses(tr, b: dict) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(generator loss, discriminator loss, the generator loss terms before weighting) of a
    batch (on the device) for trainer ``tr`` at its current step."""
    cfg, lw = tr.cfg, tr.cfg.loss
    xs, xr = b["xs"], b["xr"]
    with tr.autocast():
        o = tr.gen_fwd(xs, xr, b["s_rand"], b["use_real"], b["noise_r"], b["noise_s2r"])
        o.update(tr.dis_fwd(xs, xr, o["x_s2r"], o["x_r2s"]))
    # Losses in fp32 whatever the autocast dtype (the loss functions cast their inputs).
    parts = {
        "gan": gan_g_loss(o["d_s2r"], cfg.model.gan_type) + gan_g_loss(o["d_r2s"], cfg.model.gan_type),
        "recon_x": l1(o["xs_rec"], xs) + l1(o["xr_rec"], xr),
        "recon_c": l1(o["c_s_rec"], o["c_s"]) + l1(o["c_r_rec"], o["c_r"]),
        "recon_s": l1(o["s_t_rec"], o["s_t"]),
        "cycle": l1(o["x_s2r2s"], xs) + l1(o["x_r2s2r"], xr),
        "struct_s2r": structure_loss(xs, o["x_s2r"]),
        "struct_r2s": structure_loss(xr, o["x_r2s"]),
    }
    if lw.chroma > 0:
        parts["chroma"] = chroma_structure_loss(xs, o["x_s2r"])
    if lw.diversity > 0:
        # a second translation of the same renders with other random codes (one more decode)
        with tr.autocast():
            x_b = tr.gen_real.decode(o["c_s"], b["s_rand2"], xs)
        parts["diversity"] = mode_seeking_loss(o["x_s2r"], x_b, o["s_t"], b["s_rand2"])
    if tr.nce_heads is not None:
        # the encoder passes under autocast like every network call; the heads and the loss in fp32
        with tr.autocast():
            q = encoder_features(tr.gen_sim.enc, o["x_s2r"], tr.nce_layers)
            with torch.no_grad():
                k = encoder_features(tr.gen_sim.enc, xs, tr.nce_layers)
        # patch positions drawn from the step's seed: the same on every process
        tg = torch.Generator().manual_seed(int(step_seed(cfg.train.seed, tr.step).integers(2 ** 62)))
        parts["nce"] = patch_nce_loss(q, k, tr.nce_heads, lw.nce_patches, lw.nce_tau, tg)
    if tr.seg is not None:
        # the judge's weights get no gradient from this (backward takes inputs= the generators')
        with tr.autocast():
            judged = tr.seg(o["x_s2r"])
        tools = {c: lw.semantic_tool for c in INSTRUMENT_IDS} if lw.semantic_tool != 1 else None
        sem = semantic_loss(judged, b["ys"], tools)
        # the segmenter learns alone first: its early verdicts are noise
        parts["semantic"] = sem if tr.step >= lw.semantic_warmup else sem.detach()
    g_loss = sum(getattr(lw, k) * v for k, v in parts.items())
    d_loss = lw.gan * (gan_d_loss(o["d_r"], o["d_s2r"], cfg.model.gan_type)
                       + gan_d_loss(o["d_s"], o["d_r2s"], cfg.model.gan_type))
    return g_loss, d_loss, parts
