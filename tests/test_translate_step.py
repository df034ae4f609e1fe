"""The training step's shortcuts (batched decodes, discriminator scores of the fakes reused
for the discriminator update, fused Adam's on-device skip) compute what MUNIT's order computes."""

import torch

from sim2real.translate.config import load_config
from sim2real.translate.losses import gan_d_loss, gan_g_loss, l1, structure_loss
from sim2real.translate.trainer import Trainer

torch.set_num_threads(1)

TINY = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
        "data": {"load_size": 32, "crop": [32, 40]}, "train": {"batch_size": 2}}


class Images:
    def __init__(self, seed):
        g = torch.Generator().manual_seed(seed)
        self.images = [(torch.rand(40, 60, 3, generator=g) * 255).byte().numpy() for _ in range(3)]

    def __len__(self):
        return len(self.images)

    def get(self, i):
        return self.images[i]


def munit_order_grads(tr, b):
    """Gradients as the MUNIT code gets them: one call per decode, the generator loss with the
    discriminators frozen, then the discriminators on the detached fakes."""
    gs, gr, ds, dr, lw = tr.gen_sim, tr.gen_real, tr.dis_sim, tr.dis_real, tr.cfg.loss
    xs, xr = b["xs"], b["xr"]
    c_s = gs.encode(xs)
    c_r, s_r = gr.encode(xr)
    s_t = torch.where(b["use_real"], s_r.detach(), b["s_rand"])
    xs_rec, xr_rec, x_s2r, x_r2s = gs.decode(c_s), gr.decode(c_r, s_r), gr.decode(c_s, s_t), gs.decode(c_r)
    c_s_rec, s_t_rec = gr.encode(x_s2r)
    c_r_rec = gs.encode(x_r2s)
    x_s2r2s, x_r2s2r = gs.decode(c_s_rec), gr.decode(c_r_rec, s_r)
    ds.requires_grad_(False)
    dr.requires_grad_(False)
    g = (lw.gan * (gan_g_loss(dr(x_s2r)) + gan_g_loss(ds(x_r2s)))
         + lw.recon_x * (l1(xs_rec, xs) + l1(xr_rec, xr)) + lw.recon_c * (l1(c_s_rec, c_s) + l1(c_r_rec, c_r))
         + lw.recon_s * l1(s_t_rec, s_t) + lw.cycle * (l1(x_s2r2s, xs) + l1(x_r2s2r, xr))
         + lw.struct_s2r * structure_loss(xs, x_s2r) + lw.struct_r2s * structure_loss(xr, x_r2s))
    gen = [*gs.parameters(), *gr.parameters()]
    grads_g = torch.autograd.grad(g, gen)
    ds.requires_grad_(True)
    dr.requires_grad_(True)
    d = lw.gan * (gan_d_loss(dr(xr), dr(x_s2r.detach())) + gan_d_loss(ds(xs), ds(x_r2s.detach())))
    grads_d = torch.autograd.grad(d, [*ds.parameters(), *dr.parameters()])
    return g, d, grads_g, grads_d


def test_step_gradients_equal_the_munit_order():
    cfg = load_config(None, TINY)
    tr = Trainer(cfg, Images(0), Images(1), None, "cpu")
    for step in (0, 1):  # one step with the real image's style, one with a random one
        b = tr.draw_batch(step)
        g, d, ref_g, ref_d = munit_order_grads(tr, b)
        g2, d2, _ = tr.losses(b)
        tr.opt_g.zero_grad(set_to_none=True)
        tr.opt_d.zero_grad(set_to_none=True)
        g2.backward(inputs=tr._params(tr.opt_g), retain_graph=True)
        d2.backward(inputs=tr._params(tr.opt_d))
        torch.testing.assert_close(g2, g, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(d2, d, rtol=1e-5, atol=1e-6)
        # float32 rounding differs between one batched and two separate calls (measured: at
        # most 2e-4 of a gradient's norm on one CPU, 2.3e-3 on another, whose kernels differ;
        # a wrong order or term differs by tens of per cent); gradients that are 0 in exact
        # arithmetic (conv biases before instance norm) are rounding noise of ~1e-7..1e-6 in either
        for p, r in [*zip(tr._params(tr.opt_g), ref_g), *zip(tr._params(tr.opt_d), ref_d)]:
            assert float((p.grad - r).norm()) <= 1e-2 * float(r.norm()) + 1e-5, p.shape
    assert {bool(tr.draw_batch(s)["use_real"]) for s in range(8)} == {True, False}


def test_non_finite_gradients_skip_the_update_without_moving_anything():
    cfg = load_config(None, TINY)
    tr = Trainer(cfg, Images(0), Images(1), None, "cpu")
    tr.train_step()
    before = {k: v.clone() for k, v in tr.gen_real.state_dict().items()}
    moments = [s["exp_avg"].clone() for s in tr.opt_g.state.values()]
    steps = [float(s["step"]) for s in tr.opt_g.state.values()]
    real = tr.gen_real.up.net[-1].conv.weight
    hook = real.register_hook(lambda g: g * float("nan"))
    out = tr.train_step()
    hook.remove()
    assert float(out["skipped"]) == 1.0
    for k, v in tr.gen_real.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(torch.equal(a, s["exp_avg"]) for a, s in zip(moments, tr.opt_g.state.values()))
    assert [float(s["step"]) for s in tr.opt_g.state.values()] == steps
    assert float(tr.train_step()["skipped"]) == 0.0
