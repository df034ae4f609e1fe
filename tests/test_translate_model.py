"""Translator networks, config, structure score and augmentation (CPU, tiny sizes)."""

import numpy as np
import pytest
import torch

from sim2real.errors import ConfigError
from sim2real.translate.config import TranslatorConfig, load_config, preset_names
from sim2real.translate.generators import RealGenerator, SimGenerator, SimToReal
from sim2real.translate.losses import msssim_gray, msssim_gray_safe, msssim_settings, structure_loss

torch.set_num_threads(1)  # 2 threads on a shared 2-core box are slower than 1

TINY = {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2}


def tiny_model_cfg(**kw):
    return load_config(None, {"model": {**TINY, **kw}}).model


def test_batched_k_style_decoding_equals_per_style_loop():
    torch.manual_seed(0)
    gen = RealGenerator(tiny_model_cfg()).eval()
    content = torch.randn(2, gen.enc.out_dim, 8, 12)
    styles = torch.randn(2, 5, 8)
    with torch.no_grad():
        batched = gen.decode_multi(content, styles)
        looped = torch.stack([torch.stack([gen.decode(content[b:b + 1], styles[b, k:k + 1])[0]
                                           for k in range(5)]) for b in range(2)])
    assert batched.shape == (2, 5, 3, 32, 48)
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=1e-5)


def test_adain_is_functional_no_style_state_on_modules():
    gen = RealGenerator(tiny_model_cfg())
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    gen.decode(torch.randn(1, gen.enc.out_dim, 4, 4), torch.randn(1, 8))
    after = gen.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # two styles in one batch give two different images from the same content
    c = torch.randn(1, gen.enc.out_dim, 4, 4).expand(2, -1, -1, -1)
    y = gen.decode(c, torch.randn(2, 8))
    assert not torch.allclose(y[0], y[1])


def test_sim_generator_is_styleless_and_real_style_is_8d():
    m = tiny_model_cfg()
    sim = SimGenerator(m)
    names = [n for n, _ in sim.named_parameters()]
    assert not any("mlp" in n or "style" in n for n in names)
    real = RealGenerator(m)
    assert real.encode_style(torch.randn(2, 3, 32, 32)).shape == (2, 8)
    y = sim.decode(sim.encode(torch.randn(1, 3, 32, 48)))
    assert y.shape == (1, 3, 32, 48) and y.abs().max() <= 1


def test_content_narrowing_option():
    m = tiny_model_cfg(content_channels=8)
    model = SimToReal(m)
    c = model.content(torch.randn(1, 3, 32, 32))
    assert c.shape[1] == 8
    assert model(torch.randn(1, 3, 32, 32), torch.randn(1, 3, 8)).shape == (1, 3, 3, 32, 32)


def test_defaults_are_the_paper_settings_and_presets_load():
    cfg = TranslatorConfig()
    assert (cfg.model.gen_dim, cfg.model.mlp_dim, cfg.model.style_dim, cfg.model.n_downsample, cfg.model.n_res,
            cfg.model.dis_num_scales, cfg.model.dis_n_layer, cfg.model.pad_type) == (64, 256, 8, 2, 4, 3, 4, "reflect")
    lo = cfg.loss
    assert (lo.gan, lo.recon_x, lo.recon_c, lo.recon_s, lo.cycle, lo.struct_s2r, lo.struct_r2s) == (1, 10, 1, 1, 10, 5, 3)
    o = cfg.optim
    assert (o.lr, o.beta1, o.beta2, o.weight_decay) == (1e-4, 0.5, 0.999, 1e-4)
    assert {"small", "paper"} <= set(preset_names())
    # paper = the paper's networks and losses, plus native scale and the two label-aware terms
    paper = load_config("paper").to_dict()
    assert (paper["data"]["load_size"], paper["loss"]["semantic"], paper["loss"]["nce"]) == (0, 1.0, 1.0)
    for sec, key in (("data", "load_size"), ("loss", "semantic"), ("loss", "nce")):
        paper[sec][key] = cfg.to_dict()[sec][key]
    assert paper == cfg.to_dict()
    assert load_config("small").model.gen_dim < cfg.model.gen_dim


def test_config_errors_name_the_key_and_the_fix(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\ngen_dimm = 3\n")
    with pytest.raises(ConfigError, match=r"model.gen_dimm.*known:"):
        load_config(bad)
    bad.write_text("[data]\ncrop = [30, 64]\n")
    with pytest.raises(ConfigError, match=r"data.crop must be .*multiple of 4.*got \[30, 64\]"):
        load_config(bad)
    bad.write_text("[train]\nprecision = 'fp16'\n")
    with pytest.raises(ConfigError, match=r"train.precision fp16 is not offered"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"no such file or preset.*small"):
        load_config("nonexistent")


@pytest.mark.parametrize("size", [(24, 40), (32, 32), (64, 112), (256, 452)])
def test_msssim_handles_small_images(size):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, *size, generator=g)
    b = (0.7 * a + 0.3 * torch.rand(2, 3, *size, generator=g))
    assert torch.allclose(msssim_gray(a, a), torch.tensor(1.0), atol=1e-5)
    s = msssim_gray(a, b, reduce=False)
    assert s.shape == (2,) and (s < 1).all() and (s > 0).all()
    # the training loss uses the same terms, with bounded gradients
    assert torch.allclose(msssim_gray_safe(a, b), s.mean(), atol=1e-4)


def test_msssim_settings_use_library_defaults_at_paper_size():
    assert msssim_settings(256) == (11, pytest.approx([0.0448, 0.2856, 0.3001, 0.2363, 0.1333], rel=1e-3), False)
    win, weights, up = msssim_settings(32)
    assert win == 3 and up


def test_structure_loss_is_grayscale_so_colour_may_change():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 48, 64, generator=g) * 2 - 1
    gray_shift = x.clone()
    gray_shift[:, 0] += 0.2
    gray_shift[:, 2] -= 0.2 * 0.299 / 0.114  # keeps the luma identical
    assert structure_loss(x, gray_shift).item() < 1e-3
    assert structure_loss(x, x.flip(-1)).item() > 0.1


def test_structure_loss_gradient_is_finite_for_unrelated_images():
    g = torch.Generator().manual_seed(2)
    x = -torch.ones(1, 3, 32, 32)
    y = (torch.rand(1, 3, 32, 32, generator=g) * 2 - 1).requires_grad_()
    structure_loss(x, y).backward()
    assert torch.isfinite(y.grad).all()


def test_augmentation_fov_mask_and_determinism():
    from sim2real.translate.data import augment, fov_mask

    cfg = load_config(None, {"data": {"load_size": 32, "crop": [32, 48], "fov_prob_sim": 1.0}}).data
    img = np.full((60, 80, 3), 200, np.uint8)
    a = augment(img, np.random.default_rng(5), cfg, 1.0)
    b = augment(img, np.random.default_rng(5), cfg, 1.0)
    assert a.shape == (3, 32, 48) and torch.equal(a, b)
    assert a.min() == -1.0  # black outside the field of view
    m = fov_mask(100, 200, np.random.default_rng(0), cfg)
    # radius >= 0.4 x longer side = 80 px: the centre row is lit over at least 2 x 80 px minus the offset
    assert m[0, 50].sum() >= 2 * 80 - 2 * 0.1 * 200 - 2
    assert m[0, 0, 0] == 0 or m[0, 0, -1] == 0  # corners fall outside (radius <= half the diagonal)


def test_trim_black_bars_keeps_the_circle():
    from sim2real.translate.data import trim_black_borders

    img = np.zeros((60, 100, 3), np.uint8)
    yy, xx = np.mgrid[0:60, 0:100]
    img[(xx - 50) ** 2 + (yy - 30) ** 2 < 32 ** 2] = 150  # circle touching top/bottom, black bars left/right
    out = trim_black_borders(img, 12)
    assert out.shape[0] == 60 and 60 <= out.shape[1] <= 66
