"""Native-scale training and translation; the semantic (CyCADA) and PatchNCE (CUT) terms."""

import numpy as np
import pytest
import torch

from sim2real.classes import DEFAULT_TABLE
from sim2real.translate.checkpoint import load_checkpoint
from sim2real.translate.config import load_config
from sim2real.translate.data import RealFrames, SimImages, augment
from sim2real.translate.inference import _to_uint8, _work_tensor
from sim2real.translate.losses import PatchHeads, patch_nce_loss, semantic_loss
from sim2real.translate.trainer import Trainer

torch.set_num_threads(1)

TINY = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
        "data": {"load_size": 0, "crop": [32, 48]},
        "loss": {"semantic": 1.0, "semantic_warmup": 1, "semantic_base": 4, "nce": 1.0, "nce_patches": 16},
        "train": {"log_every": 1, "sample_every": 100, "checkpoint_every": 100}}


def test_augmented_labels_stay_aligned_with_the_crop():
    # an image whose colour says its label: after resize, rotation, crop, flip and the
    # field-of-view mask, a pixel's colour must still be its label's colour
    h, w = 90, 160
    yy, xx = np.mgrid[0:h, 0:w]
    seg = ((xx // 20 + yy // 15) % 7 + 1).astype(np.uint8)
    pal = DEFAULT_TABLE.palette()
    img = pal[seg].astype(np.uint8)
    cfg = load_config(None, {"data": {"load_size": 0, "crop": [64, 96], "scale_range": [1.0, 1.3], "rotate_deg": 10.0,
                                      "brightness": 0.0, "contrast": 0.0, "hflip_prob": 0.5, "fov_prob_sim": 1.0}}).data
    for s in range(6):
        x, lab = augment(img, np.random.default_rng(s), cfg, 1.0, short=h, seg=seg)
        assert x.shape == (3, 64, 96) and lab.shape == (64, 96) and lab.dtype == torch.uint8
        rgb = ((x + 1) * 127.5).permute(1, 2, 0).numpy()
        err = np.abs(rgb - pal[lab.numpy()]).max(axis=2)
        assert (err < 30).mean() > 0.85  # bilinear image vs nearest labels differ only along edges
        outside = x.abs().sum(0).numpy() == 3 * 1.0  # black (-1) pixels: masked or padded
        assert (lab.numpy()[outside & (err < 1)] == 0).all()


def test_native_translation_keeps_every_pixel_no_resizing():
    img = np.random.default_rng(0).integers(0, 256, (50, 70, 3)).astype(np.uint8)  # not a multiple of 4
    x, hw = _work_tensor([img], None, 4)
    assert hw == (50, 70) and x.shape[-2:] == (52, 72)
    np.testing.assert_allclose(x[0, :, :50, :70].permute(1, 2, 0).numpy(), img / 127.5 - 1, atol=1e-6)
    back = _to_uint8(x, hw, (50, 70))[0].numpy()
    assert np.array_equal(back, img)  # decode side crops back, no resampling either


def test_patch_nce_rewards_patches_that_match_their_own_location():
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 8, 6, 6, generator=g)]
    heads = PatchHeads([8], dim=16)
    same = patch_nce_loss(feats, feats, heads, 16, 0.07, torch.Generator().manual_seed(1))
    other = patch_nce_loss([torch.randn(2, 8, 6, 6, generator=g)], feats, heads, 16, 0.07,
                           torch.Generator().manual_seed(1))
    assert float(same.detach()) < 0.5 * float(other.detach())


def test_semantic_loss_is_low_for_the_right_labels_only():
    labels = torch.randint(0, 8, (1, 5, 7), generator=torch.Generator().manual_seed(0))
    logits = torch.nn.functional.one_hot(labels, 8).permute(0, 3, 1, 2).float() * 20
    assert float(semantic_loss(logits, labels)) < 1e-3
    assert float(semantic_loss(logits, (labels + 1) % 8)) > 10


def test_semantic_tool_weight_weighs_the_instruments_pixels():
    from sim2real.classes import INSTRUMENT_IDS

    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, 0, :] = INSTRUMENT_IDS[0]                                   # 4 instrument pixels of 16
    logits = torch.zeros(1, 10, 4, 4)
    logits[:, 0] = 5.0                                              # background everywhere: instruments missed
    plain = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    weighted = semantic_loss(logits, labels, {c: 4.0 for c in INSTRUMENT_IDS})
    # 4 tool pixels weigh 4 each against 12 background pixels: the weighted mean
    want = (4 * plain[labels == INSTRUMENT_IDS[0]].sum() + plain[labels == 0].sum()) / (4 * 4 + 12)
    torch.testing.assert_close(weighted, want)
    assert float(weighted) > float(semantic_loss(logits, labels))


def test_chroma_structure_loss_sees_colour_edges_not_tints_or_brightness():
    """Zero for a tint shared by every pixel and for a grey (equal-channel) change of brightness
    or contrast; positive for a colour band the render does not have, and more for a stronger one."""
    from sim2real.translate.losses import chroma_structure_loss

    x = torch.rand(2, 3, 12, 16, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    grey = x.mean(1, keepdim=True)
    tint = x + torch.tensor([0.1, -0.05, 0.02]).view(1, 3, 1, 1)
    brighter = x + 0.3 * grey                                    # the same change on every channel
    band = x.clone()
    band[:, 0, 4:8] += 0.2                                       # red stripe
    stronger = x.clone()
    stronger[:, 0, 4:8] += 0.4
    assert float(chroma_structure_loss(x, tint)) < 1e-6
    assert float(chroma_structure_loss(x, brighter)) < 1e-6
    assert float(chroma_structure_loss(x, band)) > 0.01
    assert float(chroma_structure_loss(x, stronger)) > 1.9 * float(chroma_structure_loss(x, band))


def test_the_trainer_adds_the_chroma_term_with_its_weight(fake_render_dataset, fake_real_folder, tmp_path):
    from sim2real.translate.batches import to_device

    tr = _make(fake_render_dataset, fake_real_folder, tmp_path / "r")
    b = to_device(tr.draw_batch(0), tr.device)
    tr.cfg.loss.chroma = 0.0
    off, _, parts_off = tr.losses(b)
    assert "chroma" not in parts_off
    tr.cfg.loss.chroma = 3.0
    on, _, parts = tr.losses(b)
    assert float(parts["chroma"]) > 0
    assert float(on - off) == pytest.approx(3.0 * float(parts["chroma"]), rel=1e-4)


def test_mode_seeking_loss_falls_as_styles_spread_the_images():
    """Large when two style codes give the same image, smaller the more the images differ
    for the same pair of codes, and smaller for the same image gap over closer codes."""
    from sim2real.translate.losses import mode_seeking_loss

    y = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    s1, s2 = torch.zeros(2, 8), torch.ones(2, 8)
    same = float(mode_seeking_loss(y, y, s1, s2))
    near = float(mode_seeking_loss(y, y + 0.05, s1, s2))
    far = float(mode_seeking_loss(y, y + 0.2, s1, s2))
    assert same > 1e4 and near == pytest.approx(20.0, rel=1e-3) and far == pytest.approx(5.0, rel=1e-3)
    assert float(mode_seeking_loss(y, y + 0.05, s1, s2 * 0.5)) == pytest.approx(10.0, rel=1e-3)


def test_the_trainer_adds_the_diversity_term_and_it_reaches_the_generator(fake_render_dataset, fake_real_folder,
                                                                          tmp_path):
    """With loss.diversity the batch carries a second style code per item, the term enters the
    generator loss with its weight, and its gradient reaches the sim->real generator."""
    from sim2real.translate.batches import to_device

    tr = _make(fake_render_dataset, fake_real_folder, tmp_path / "r")
    assert tr.draw_batch(0)["s_rand2"] is None
    tr.cfg.loss.diversity = 0.5
    b = to_device(tr.draw_batch(0), tr.device)
    assert b["s_rand2"].shape == b["s_rand"].shape and not torch.equal(b["s_rand2"], b["s_rand"])
    on, _, parts = tr.losses(b)
    assert float(parts["diversity"]) > 0
    grads = torch.autograd.grad(0.5 * parts["diversity"], list(tr.gen_real.parameters()), allow_unused=True)
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    tr.cfg.loss.diversity = 0.0
    off, _, parts_off = tr.losses(b)
    assert "diversity" not in parts_off
    assert float(on - off) == pytest.approx(0.5 * float(parts["diversity"]), rel=1e-3)


def _make(render, real, run):
    cfg = load_config(None, TINY)
    return Trainer(cfg, SimImages(render), RealFrames([real / "images"], cfg.data), run, "cpu")


def test_native_training_with_label_terms_runs_and_resumes_exactly(fake_render_dataset, fake_real_folder, tmp_path):
    straight = _make(fake_render_dataset, fake_real_folder, tmp_path / "a")
    assert straight.cfg.data.native_short == 48  # the fake renders are 64x48: real frames go to that scale
    seg0 = straight.seg.head.weight.detach().clone()
    straight.fit(4)
    assert not torch.equal(seg0, straight.seg.head.weight)  # the judge learns on the renders
    rec = [__import__("json").loads(ln) for ln in (tmp_path / "a" / "losses.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["semantic"]) and np.isfinite(r["nce"]) and np.isfinite(r["semantic_seg"]) for r in rec)

    first = _make(fake_render_dataset, fake_real_folder, tmp_path / "b")
    first.fit(2)
    resumed = _make(fake_render_dataset, fake_real_folder, tmp_path / "b")
    resumed.load_state(load_checkpoint(tmp_path / "b" / "checkpoint.pt", kinds=("train",)))
    resumed.fit(4)
    a, b = straight.state(), resumed.state()
    for net in a["model"]:
        for k, v in a["model"][net].items():
            assert torch.equal(v, b["model"][net][k]), (net, k)
    assert resumed.cfg.to_dict() == straight.cfg.to_dict()


def test_the_trainer_uses_the_semantic_term_with_its_weight_after_warmup(fake_render_dataset, fake_real_folder,
                                                                         tmp_path):
    from sim2real.translate.batches import to_device

    tr = _make(fake_render_dataset, fake_real_folder, tmp_path / "r")
    params = [p for p in tr.gen_real.parameters()]
    b = to_device(tr.draw_batch(0), tr.device)

    def g_loss_and_grads(weight: float, step: int):
        tr.cfg.loss.semantic, tr.step = weight, step
        g, _, parts = tr.losses(b)
        grads = torch.autograd.grad(g, params, allow_unused=True)
        return float(g.detach()), float(parts["semantic"].detach()), torch.cat([x.flatten() for x in grads if x is not None])

    warm = tr.cfg.loss.semantic_warmup
    off, _, grad_off = g_loss_and_grads(0.0, warm)
    on, sem, grad_on = g_loss_and_grads(1.0, warm)
    on2, sem2, _ = g_loss_and_grads(2.0, warm)
    # the term enters the generator loss with its weight...
    assert sem > 0 and sem == pytest.approx(sem2)
    assert on - off == pytest.approx(sem, rel=1e-4) and on2 - off == pytest.approx(2 * sem, rel=1e-4)
    # ...and its gradient reaches the sim -> real generator
    assert not torch.allclose(grad_on, grad_off)
    # during the warm-up it is logged but does not train the generator
    _, _, grad_warm_off = g_loss_and_grads(0.0, warm - 1)
    _, _, grad_warm_on = g_loss_and_grads(1.0, warm - 1)
    assert torch.equal(grad_warm_on, grad_warm_off)


@pytest.mark.parametrize("bad, words", [({"data": {"load_size": 8}}, "load_size"),
                                        ({"loss": {"nce_tau": 0}}, "nce_tau"),
                                        ({"loss": {"semantic": -1}}, "semantic"),
                                        ({"loss": {"semantic_tool": 0}}, "semantic_tool"),
                                        ({"loss": {"chroma": -1}}, "chroma"),
                                        ({"loss": {"diversity": -0.1}}, "diversity")])
def test_bad_label_term_settings_are_named(bad, words):
    from sim2real.errors import ConfigError

    with pytest.raises(ConfigError, match=words):
        load_config(None, bad)


def test_native_run_translates_renders_at_their_own_size(fake_render_dataset, fake_real_folder, tmp_path):
    from sim2real.dataset.format import open_dataset
    from sim2real.translate.inference import translate_dataset

    tr = _make(fake_render_dataset, fake_real_folder, tmp_path / "run")
    tr.fit(1)
    out = translate_dataset(tmp_path / "run", fake_render_dataset, tmp_path / "tr", k=2)["out"]
    src, ds = open_dataset(fake_render_dataset), open_dataset(out)
    assert len(ds) == 2 * len(src)
    for s in ds:
        r = src.sample(s.meta["translation"]["source_id"])
        assert s.image().shape == r.image().shape
        assert s.path("segmentation").read_bytes() == r.path("segmentation").read_bytes()
    assert ds.info["translation"]["work_short_side"] == "native"
