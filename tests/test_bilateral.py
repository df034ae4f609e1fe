"""The bilateral-grid generator family: structure by construction, multimodality, precision, cost,
and the settings that cannot work."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sim2real.errors import ConfigError
from sim2real.translate.bilateral import (SQUASH, BilateralRealGenerator, BilateralSimGenerator,
                                          BilateralSimToReal, make_generators, make_sim_to_real, nce_spec)
from sim2real.translate.config import TranslatorConfig
from sim2real.translate.generators import SimToReal, inference_state
from sim2real.translate.losses import encoder_features

TINY = {"family": "bilateral", "bil_dim": 4, "bil_low": 16, "bil_grid": 4, "bil_bins": 4, "n_res": 1,
        "mlp_dim": 16, "n_mlp": 2}


def _model(data: dict | None = None, **model):
    return TranslatorConfig.from_dict({"model": {**TINY, **model}, "data": data or {"crop": [16, 16]}}).model


def _init(net: nn.Module, seed: int) -> nn.Module:
    """Kaiming-normal weights with zero biases (how the trainer initialises generators), seeded."""
    g = torch.Generator().manual_seed(seed)
    for mod in net.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight, a=0, mode="fan_in", generator=g)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    return net


def _pair(m, seed=0):
    sim, real = make_generators(m)
    return _init(sim, seed), _init(real, seed + 1)


def _img(b, h, w, seed):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---------------------------------------------------------------- (1) every pixel from its own colour


@pytest.mark.parametrize("guide", ["learned", "luma"])
def test_output_pixel_depends_only_on_its_own_input_pixel_given_the_content(guide):
    """With the low-resolution content held fixed, the Jacobian of the output with respect to the
    image being transformed is block-diagonal: pixel p of the output reads pixel p of the input only."""
    m = _model(bil_guide=guide)
    sim, real = _pair(m)
    c = real.encode_content(_img(1, 16, 16, 1))
    s = torch.randn(1, m.style_dim, generator=torch.Generator().manual_seed(2))
    x = _img(1, 5, 7, 3)
    for fn in (lambda g: real.decode(c, s, g), lambda g: sim.decode(sim.encode(_img(1, 16, 16, 4)), g)):
        jac = torch.autograd.functional.jacobian(fn, x, vectorize=True)[0, :, :, :, 0]     # (3, 5, 7, 3, 5, 7)
        per_pair = jac.abs().sum(dim=(0, 3))                                # (5, 7, 5, 7): out pixel x in pixel
        eye = torch.eye(35).view(5, 7, 5, 7).bool()
        assert per_pair[~eye].max() == 0
        assert (per_pair[eye] > 1e-4).all()                                 # and it does read its own colour


def test_decode_is_the_sliced_affine_transform_of_each_pixel():
    """The output equals, pixel by pixel, tanh(atanh(c * rgb) + A @ [rgb, 1]) with A the trilinear
    interpolation of the predicted grid at (x, y, guide) (computed here with a 5-D grid_sample)."""
    m = _model()
    _, real = _pair(m)
    x = _img(2, 9, 13, 5)
    c, s = real.encode(_img(2, 16, 16, 6))
    grids = real.grids(c, s[:, None])[:, 0]                                 # (B, 12, D, G, G)
    g = real.guide(x)                                                       # (B, 1, H, W)
    b, _, h, w = x.shape
    coords = torch.stack([torch.linspace(-1, 1, w).view(1, 1, w).expand(b, h, w),
                          torch.linspace(-1, 1, h).view(1, h, 1).expand(b, h, w), g[:, 0] * 2 - 1], -1)
    a = F.grid_sample(grids, coords[:, None], mode="bilinear", padding_mode="border",
                      align_corners=True)[:, :, 0].view(b, 3, 4, h, w)
    want = torch.tanh(torch.atanh(SQUASH * x) + torch.einsum("bcjhw,bjhw->bchw", a[:, :, :3], x) + a[:, :, 3])
    assert torch.allclose(real.decode(c, s, x), want, atol=1e-5)


def test_detail_branch_is_bounded_by_its_setting():
    """With the detail branch on, changing every other pixel moves an output pixel by at most twice
    the bound (the affine part reads its own pixel only; the detail adds at most +-bound)."""
    bound = 0.1
    m = _model(bil_detail=bound)
    _, real = _pair(m)
    c, s = real.encode(_img(1, 16, 16, 7))
    x = _img(1, 12, 12, 8)
    y = x.clone()
    keep = torch.zeros(12, 12, dtype=torch.bool)
    keep[4:8, 4:8] = True                                                   # pixels kept; all others redrawn
    y[..., ~keep] = _img(1, 12, 12, 9)[..., ~keep]
    with torch.no_grad():
        d = (real.decode(c, s, x) - real.decode(c, s, y)).abs()[..., keep]
    assert d.max() <= 2 * bound + 1e-6
    assert d.max() > 1e-3                                                   # the neighbours do reach it


# ---------------------------------------------------------------- (2) thin structures survive


def test_a_one_pixel_line_stays_where_it_is_at_452x256():
    """Random weights, the default bilateral settings, the full path (the low-resolution network
    sees the same image): a 1-px bright line on a dark background is, in every row (column) of
    every variant, exactly where the input has it."""
    m = TranslatorConfig.from_dict({"model": {"family": "bilateral"}}).model
    _, real = _pair(m, seed=3)
    h, w, col, row = 256, 452, 201, 97
    x = torch.full((1, 3, h, w), -0.8)
    x[..., :, col] = 0.9
    x[..., row, :] = 0.9
    styles = torch.randn(1, 3, m.style_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        c, _ = real.encode(x)
        out = real.decode_multi(c, styles, x)[0]                           # (K, 3, H, W)

    def peak(v, axis):  # index of the strongest 1-D second difference along axis, per line
        p = v if axis == -1 else v.transpose(-1, -2)
        lap = (2 * p[..., 1:-1] - p[..., :-2] - p[..., 2:]).abs().sum(1)     # (K, lines, n - 2)
        return lap.argmax(-1) + 1

    rows = [r for r in range(h) if r != row]
    cols = [cc for cc in range(w) if cc != col]
    assert (peak(out[:, :, rows, :], -1) == col).all()
    assert (peak(out[:, :, :, cols], -2) == row).all()
    # and it is visible (its sign is not guaranteed: random colour transforms may invert it;
    # keeping instruments distinct from tissue is the label-aware losses' job)
    assert ((out[:, :, rows, col] - out[:, :, rows, col + 5]).abs().sum(1) > 0.01).all()


# ---------------------------------------------------------------- (3) multimodal


def test_styles_differ_outputs_differ_same_style_same_output():
    m = _model()
    sim, real = _pair(m)
    x = _img(2, 20, 24, 10)
    s = torch.randn(2, 2, m.style_dim, generator=torch.Generator().manual_seed(11))
    styles = torch.stack([s[:, 0], s[:, 1], s[:, 0]], dim=1)               # (B, 3, D): style 0 twice
    with torch.no_grad():
        c = sim.encode(x)
        y = real.decode_multi(c, styles, x)
        one = real.decode(c, s[:, 1], x)
    assert y.shape == (2, 3, 3, 20, 24)
    assert torch.allclose(y[:, 0], y[:, 2], atol=1e-6)
    assert (y[:, 0] - y[:, 1]).abs().mean() > 1e-3
    assert torch.allclose(y[:, 1], one, atol=1e-5)
    assert y.abs().max() < 1


# ---------------------------------------------------------------- (4) bf16 autocast on CPU


def test_training_forward_backward_under_cpu_bf16_autocast():
    """The trainer's step (guides = the images being translated; cycle decodes take the translations)
    under CPU bf16 autocast: fp32 images in [-1, 1], a finite gradient for every parameter."""
    m = _model(bil_detail=0.1, real_input_noise=0.1)
    sim, real = _pair(m)
    xs, xr = _img(2, 16, 20, 12), _img(2, 16, 20, 13)
    s_rand = torch.randn(2, m.style_dim)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        c_s = sim.encode(xs)
        c_r, s_r = real.encode(xr, torch.randn_like(xr))
        xs_rec, x_r2s = sim.decode(torch.cat([c_s, c_r]), torch.cat([xs, xr])).split(2)
        xr_rec, x_s2r = real.decode(torch.cat([c_r, c_s]), torch.cat([s_r, s_rand]), torch.cat([xr, xs])).split(2)
        c_s_rec, s_t_rec = real.encode(x_s2r)
        x_s2r2s = sim.decode(c_s_rec, x_s2r)
        x_r2s2r = real.decode(sim.encode(x_r2s), s_r, x_r2s)
    for y in (xs_rec, xr_rec, x_s2r, x_r2s, x_s2r2s, x_r2s2r):
        assert y.dtype == torch.float32 and y.abs().max() <= 1
    loss = sum((a.float() - b).abs().mean() for a, b in ((xs_rec, xs), (xr_rec, xr), (x_s2r2s, xs), (x_r2s2r, xr)))
    loss = loss + (c_s_rec.float() - c_s.float()).abs().mean() + (s_t_rec.float() - s_rand).abs().mean()
    loss.backward()
    for net in (sim, real):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert real.guide.net[0].weight.grad.abs().sum() > 0                   # the guide learns too


# ---------------------------------------------------------------- (5) cost and resolution


def test_any_resolution_same_low_resolution_work_few_operations_per_pixel():
    """The low-resolution path is the same at every image size (odd ones too); what grows with
    the image is a few dozen FLOPs per pixel, not a convolution stack (MUNIT's first 7x7 conv
    alone is 2 * 7 * 7 * 3 * gen_dim = 4704 FLOPs per pixel at the small preset's gen_dim 16)."""
    from torch.utils.flop_counter import FlopCounterMode

    m = TranslatorConfig.from_dict({"model": {"family": "bilateral"}}).model
    model = _init(make_sim_to_real(m), 5).eval()
    k = 2
    styles = torch.randn(1, k, m.style_dim)
    flops, shapes = {}, {}
    for h, w in ((64, 112), (128, 224), (67, 113)):
        x = _img(1, h, w, 14)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            c = model.content(x)
            y = model.decode_multi(c, styles)
        assert y.shape == (1, k, 3, h, w)
        flops[h, w], shapes[h, w] = fc.get_total_flops(), tuple(c.shape)
    assert len(set(shapes.values())) == 1
    per_pixel_per_variant = (flops[128, 224] - flops[64, 112]) / (3 * 64 * 112) / k
    assert per_pixel_per_variant < 200


# ---------------------------------------------------------------- (6) settings that cannot work


@pytest.mark.parametrize("model, data, field", [
    ({"bil_grid": 128}, None, "model.bil_grid"),                       # grid finer than the low-res input
    ({"bil_low": 48}, None, "model.bil_low"),                          # 48 / 16 not a power of 2
    ({"bil_low": 128}, {"crop": [64, 112]}, "model.bil_low"),          # low-res larger than the crop
    ({"bil_detail": 0.5}, None, "model.bil_detail"),
    ({"bil_detail": math.inf}, None, "model.bil_detail"),              # unbounded
    ({"bil_detail": -0.1}, None, "model.bil_detail"),
    ({"bil_bins": 0}, None, "model.bil_bins"),
    ({"bil_grid": 0}, None, "model.bil_grid"),
    ({"bil_dim": -1}, None, "model.bil_dim"),
    ({"bil_low": 0}, None, "model.bil_low"),
    ({"family": "unet"}, None, "model.family"),
    ({"bil_guide": "depth"}, None, "model.bil_guide"),
])
def test_bad_settings_are_one_line_naming_the_setting(model, data, field):
    with pytest.raises(ConfigError) as e:
        TranslatorConfig.from_dict({"model": {"family": "bilateral", **model}, **({"data": data} if data else {})})
    msg = str(e.value)
    assert field in msg and "\n" not in msg
    if data:
        assert "data.crop" in msg


def test_defaults_and_munit_configs_are_unaffected():
    assert TranslatorConfig().model.family == "munit"
    # a crop smaller than bil_low is fine for the MUNIT family (the setting does not apply)
    TranslatorConfig.from_dict({"data": {"crop": [32, 32]}})
    TranslatorConfig.from_dict({"model": {"family": "bilateral", "bil_low": 32, "bil_grid": 8},
                                "data": {"crop": [32, 32]}})


# ---------------------------------------------------------------- interface: inference and PatchNCE


def test_inference_model_loads_the_generators_weights_and_carries_its_guide():
    m = _model()
    sim, real = _pair(m)
    model = make_sim_to_real(m)
    assert isinstance(model, BilateralSimToReal)
    model.load_state_dict(inference_state(sim.state_dict(), real.state_dict()), strict=True)
    x = _img(3, 18, 22, 15)
    styles = torch.randn(3, 2, m.style_dim)
    with torch.no_grad():
        want = real.decode_multi(sim.encode(x), styles, x)
        content = model.content(x)
        assert torch.allclose(model(x, styles), want, atol=1e-6)
        assert torch.allclose(model.decode_multi(content, styles), want, atol=1e-6)
        rows = torch.as_tensor([2, 0])                                      # a redraw decodes some rows again
        assert torch.allclose(model.decode_multi(content[rows], styles[rows]), want[rows], atol=1e-6)
        assert torch.allclose(model.style(x), real.encode_style(x))
    assert isinstance(make_sim_to_real(TranslatorConfig().model), SimToReal)


@pytest.mark.parametrize("family", ["bilateral", "munit"])
def test_nce_spec_names_layers_with_those_channels(family):
    over = TINY if family == "bilateral" else {"gen_dim": 4, "n_res": 1, "n_downsample": 2}
    m = TranslatorConfig.from_dict({"model": {**over, "family": family}, "data": {"crop": [16, 16]}}).model
    sim, _ = make_generators(m)
    assert isinstance(sim, BilateralSimGenerator) == (family == "bilateral")
    layers, chans = nce_spec(m)
    feats = encoder_features(sim.enc, _img(1, 16, 16, 16), layers)
    assert [f.shape[1] for f in feats] == chans
    assert feats[-1].shape == sim.encode(_img(1, 16, 16, 16)).shape


def test_real_generator_is_a_module_without_stored_style():
    """Styles are arguments: two decodes with different styles in one batch equal two single decodes."""
    m = _model()
    _, real = _pair(m)
    assert isinstance(real, BilateralRealGenerator)
    x = _img(2, 10, 10, 17)
    c = real.encode_content(x)
    s = torch.randn(2, m.style_dim)
    with torch.no_grad():
        both = real.decode(c, s, x)
        assert torch.allclose(both[1:], real.decode(c[1:], s[1:], x[1:]), atol=1e-6)


# ---------------------------------------------------------------- translation: the training scale, full resolution


def test_translation_predicts_the_grid_at_the_training_scale_and_keeps_the_render_resolution(
        fake_render_dataset, fake_real_folder, tmp_path):
    """Trained on whole frames resized to ``load_size``, the grid is predicted from the render at
    that size (what the low-resolution path saw in training) and applied to the render at its own
    resolution: an identity grid gives the render back pixel for pixel, not a blurred up-scaling."""
    import numpy as np

    from sim2real.translate.config import load_config
    from sim2real.translate.data import RealFrames, SimImages, resize_short
    from sim2real.translate.inference import MunitTranslator
    from sim2real.translate.trainer import Trainer

    over = {"model": {**TINY, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
            "data": {"load_size": 24, "crop": [0, 0]},
            "train": {"log_every": 1, "sample_every": 100, "checkpoint_every": 100}}
    cfg = load_config(None, over)
    sim = SimImages(fake_render_dataset)
    tr = Trainer(cfg, sim, RealFrames([fake_real_folder / "images"], cfg.data), tmp_path / "run", "cpu")
    assert tr.cfg.data.crop == [24, 32]                     # the whole 48x64 render at the training scale
    tr.fit(1)
    t = MunitTranslator(tmp_path / "run" / "checkpoint.pt", "cpu")
    img = sim.get(0)
    content, hw = t.content([img])
    assert hw == img.shape[:2]                              # the render's own resolution
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = t.model.sim.encode(resize_short(x, 24) * 2 - 1)
    torch.testing.assert_close(content.code, want)          # the grid's input: the render at the training scale
    with torch.no_grad():
        t.model.real.head.conv.weight.zero_()
        t.model.real.head.conv.bias.zero_()                 # an identity grid
    y = t.decode(content, np.zeros((1, 2, t.model.style_dim), np.float32), hw, img.shape[:2])
    assert y.shape == (1, 2, *img.shape)
    assert (y[0].int() - torch.from_numpy(img).int()).abs().max() <= 2   # tanh(atanh(0.995 x)): within 2 levels


def test_the_bilateral_family_trains_on_whole_frames_and_a_part_of_the_frame_is_refused():
    """Its grid is predicted from the whole frame at translation, so the low-resolution path must
    see whole frames in training too, not zoomed-in crops (native-scale crops of ``small``)."""
    from sim2real.translate.config import fit_crop, load_config

    cfg = load_config("bilateral")
    assert cfg.model.family == "bilateral" and cfg.data.crop == [0, 0]
    assert fit_crop(cfg, (144, 256)) == [72, 128] and fit_crop(cfg, (256, 452)) == [72, 124]
    crops = load_config("small", {"model": {"family": "bilateral"}})        # 64x112 crops of 144x256 renders
    with pytest.raises(ConfigError) as e:
        fit_crop(crops, (144, 256))
    msg = str(e.value)
    assert "data.crop [64, 112]" in msg and "--config bilateral" in msg and "\n" not in msg
    assert fit_crop(load_config("small"), (144, 256)) == [64, 112]          # the MUNIT family may crop
