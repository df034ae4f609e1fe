"""Appearance is image-only: camera effects, tissue looks and their statistics (no bpy)."""

import dataclasses
import io

import numpy as np
import pytest

from sim2real.appearance.stats import ColourStats, delta_e76, lab_to_linear, srgb8_to_lab
from sim2real.imaging.camera_effects import apply, auto_exposure_gain, jpeg_artifacts, metering_mask, vignette
from sim2real.config import load_config
from sim2real.imaging.postprocess import process
from sim2real.scene.description import CameraEffects
from sim2real.scene.sampler import Sampler

FX = CameraEffects(vignetting=0.3, defocus_px=0.7, noise=0.01, gamma=1.05, gains=(1.05, 1.0, 0.95),
                   saturation=0.95, jpeg_quality=70, seed=5)


def _passes(h=36, w=64, seed=0):
    rng = np.random.default_rng(seed)
    img = {f"V.Combined.{c}": rng.uniform(0, 0.8, (h, w)).astype(np.float32) for c in "RGB"}
    lab = {"V.IndexOB.X": np.where(np.arange(w)[None, :] < w // 2, 1.0, 2.0) * np.ones((h, 1)),
           "V.Depth.Z": np.full((h, w), 0.05), **{f"V.Normal.{a}": np.full((h, w), v) for a, v in zip("XYZ", (0, 0, 1))}}
    k = np.array([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]])
    return img, lab, k


def test_effects_change_the_image_only_and_repeat_exactly():
    img, lab, k = _passes()
    plain = process(img, lab, k, np.eye(4), {1: 2, 2: 6}, (32, 18, 30))
    a = process(img, lab, k, np.eye(4), {1: 2, 2: 6}, (32, 18, 30), effects=FX)
    b = process(img, lab, k, np.eye(4), {1: 2, 2: 6}, (32, 18, 30), effects=FX)
    for key in ("segmentation", "instances", "depth", "normals"):
        assert np.array_equal(plain[key], a[key]), key
    assert np.array_equal(a["image"], b["image"])  # deterministic per sample seed
    assert not np.array_equal(a["image"], plain["image"])
    c = process(img, lab, k, np.eye(4), {1: 2, 2: 6}, (32, 18, 30),
                effects=CameraEffects(**{**FX.__dict__, "seed": 6}))
    assert not np.array_equal(a["image"], c["image"])  # the noise follows the seed
    assert (a["image"][~np.isfinite(a["depth"])] == 0).all()  # black outside the field of view


def test_vignetting_darkens_the_edge_of_the_field_of_view():
    g = vignette(64, 36, 0.4, (32, 18, 18))
    assert g[18, 32] == pytest.approx(1.0, abs=0.01)
    assert g[18, 14] == pytest.approx(0.6, abs=0.03)  # 18 px from the centre = the circle's edge
    flat = np.full((36, 64, 3), 0.2)
    out = apply(flat, CameraEffects(0.4, 0.0, 0.0, 1.0, (1, 1, 1), 1.0, 0, 0), (32, 18, 18))
    assert out[18, 32, 0] > out[18, 16, 0] + 10


def test_numpy_jpeg_is_close_to_a_real_codec():
    from PIL import Image

    yy, xx = np.mgrid[0:64, 0:96]
    img = np.clip(np.stack([128 + 60 * np.sin(xx / 9) * np.cos(yy / 7), 100 + 50 * np.sin(yy / 5 + xx / 13),
                            90 + 40 * np.cos(xx / 4)], -1), 0, 255).astype(np.uint8)
    for q in (40, 85):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q, subsampling=2)
        codec = np.asarray(Image.open(buf).convert("RGB")).astype(float)
        ours = jpeg_artifacts(img, q).astype(float)
        err_codec, err_ours = np.abs(codec - img).mean(), np.abs(ours - img).mean()
        assert 0.5 * err_codec < err_ours < 2.0 * err_codec + 1.0
    assert jpeg_artifacts(img, 20).astype(float).std() > 0  # still an image
    assert np.abs(jpeg_artifacts(img, 20).astype(float) - img).mean() > np.abs(jpeg_artifacts(img, 95).astype(float) - img).mean()


def test_appearance_settings_never_move_geometry_or_labels_inputs():
    """Colours, stains, tool looks and camera effects draw from their own streams."""
    base = load_config("full", {"render.resolution": [64, 36]})  # every instrument look on
    looks = load_config("full", {"render.resolution": [64, 36], "gallbladder.color": [0.5, 0.1, 0.4],
                                    "liver.blood": [0.5, 0.9], "camera_effects.enabled": False,
                                    "instruments.shaft_color": [0.2, 0.2, 0.2], "light.color": [1.0, 0.5, 0.5]})
    for i in range(3):
        a, b = Sampler(base)(3, i), Sampler(looks)(3, i)
        assert [o.name for o in a.objects] == [o.name for o in b.objects]
        for oa, ob in zip(a.objects, b.objects):
            assert np.array_equal(oa.vertices, ob.vertices) and np.array_equal(oa.faces, ob.faces)
        assert np.array_equal(a.camera.camera_to_world, b.camera.camera_to_world)
        assert a.render.fov_mask == b.render.fov_mask
        assert a.effects is not None and b.effects is None
        shafts = {o.name: o for o in b.objects if o.name.endswith("_shaft")}
        insulated = [shafts[f"tool{ins.index}_shaft"] for ins in b.instruments if ins.look["shaft"] == "insulated"]
        assert len(shafts) == len(b.instruments) and all(
            np.allclose(o.material.base_color, 0.2) and o.material.metallic == 0 for o in insulated)
        # brushed metal: a metallic mix in the preset's range, never a pure mirror-like metal
        lo, hi = looks["instruments"]["tip_metallic"]
        tips = {o.name: o for o in b.objects if o.name.endswith("_tip")}
        assert all(lo <= tips[f"tool{ins.index}_tip"].material.metallic <= hi < 1
                   for ins in b.instruments if ins.look["shaft"] != "grey")  # a grey suction cannula: plastic


def test_lab_conversion_matches_reference_values():
    # reference values from the CIE formulas (D65): white, mid grey, pure red
    assert np.allclose(srgb8_to_lab(np.array([255, 255, 255], np.uint8)), [100, 0, 0], atol=0.01)
    assert np.allclose(srgb8_to_lab(np.array([119, 119, 119], np.uint8)), [50.0, 0, 0], atol=0.3)
    assert np.allclose(srgb8_to_lab(np.array([255, 0, 0], np.uint8)), [53.24, 80.09, 67.20], atol=0.05)
    lab = np.array([42.0, 17.0, 3.0])
    assert np.allclose(srgb8_to_lab(np.round(255 * np.clip(lab_to_linear(lab), 0, 1) ** (1 / 2.2)).astype(np.uint8)),
                       lab, atol=3)  # round trip through an approximate encoding stays close
    s = ColourStats(["a"])
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2] = (255, 0, 0)
    img[2:] = 255
    s.add(img, np.array([[1] * 4] * 2 + [[0] * 4] * 2), np.ones((4, 4), bool))
    assert delta_e76(s.mean("a"), [53.24, 80.09, 67.20]) < 0.05
    assert s.clipped_share == 1.0


# --- smoke and motion blur ------------------------------------------------------------------

NEUTRAL = CameraEffects(vignetting=0.0, defocus_px=0.0, noise=0.0, gamma=1.0, gains=(1.0, 1.0, 1.0),
                        saturation=1.0, jpeg_quality=0, seed=3)


def _tool_passes(h=48, w=80, seed=0):
    """Random tissue; a tool (instance 3 -> class 7) as a bright bar across the middle."""
    img, lab, k = _passes(h, w, seed)
    bar = np.zeros((h, w), bool)
    bar[20:28, 10:60] = True
    for c in "RGB":
        img[f"V.Combined.{c}"] = np.where(bar, 0.9, img[f"V.Combined.{c}"] * 0.3).astype(np.float32)
    lab["V.IndexOB.X"] = np.where(bar, 3.0, lab["V.IndexOB.X"])
    lab["V.Depth.Z"] = np.where(bar, 0.03, np.where(np.arange(w)[None, :] < w // 2, 0.05, 0.15)).astype(np.float32)
    return img, lab, k, bar


def _run(fx, passes):
    img, lab, k, _ = passes
    return process(img, lab, k, np.eye(4), {1: 2, 2: 4, 3: 7}, None, effects=fx)


def test_scene_effects_touch_no_label_and_repeat_exactly():
    p = _tool_passes()
    plain = _run(NEUTRAL, p)
    for fx in (dataclasses.replace(NEUTRAL, smoke=0.4, smoke_depth_m=0.05),
               dataclasses.replace(NEUTRAL, motion_blur_px=6, motion_blur_angle_deg=20),
               dataclasses.replace(NEUTRAL, motion_blur_px=6, motion_blur_mode="frame", smoke=0.3)):
        a, b = _run(fx, p), _run(fx, p)
        for key in ("segmentation", "instances", "depth", "normals"):
            assert np.array_equal(plain[key], a[key]), key
        assert np.array_equal(a["image"], b["image"])
        assert not np.array_equal(a["image"], plain["image"])
    # the smoke's blobs follow the effects seed
    fx = dataclasses.replace(NEUTRAL, smoke=0.4)
    assert not np.array_equal(_run(fx, p)["image"], _run(dataclasses.replace(fx, seed=4), p)["image"])


def _near(mask, r):
    """Pixels within r (Euclidean) of the mask, by brute force."""
    yy, xx = np.nonzero(mask)
    gy, gx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    d = np.min((gy[..., None] - yy) ** 2 + (gx[..., None] - xx) ** 2, -1)
    return d <= r * r


def test_tool_motion_blur_smears_the_tools_only():
    p = _tool_passes()
    bar = p[3]
    plain = _run(NEUTRAL, p)["image"].astype(int)
    length = 8.0
    for angle in (0.0, 90.0, 35.0):
        out = _run(dataclasses.replace(NEUTRAL, motion_blur_px=length, motion_blur_angle_deg=angle), p)["image"]
        changed = np.any(out.astype(int) != plain, -1)
        # off-tool pixels further than half the smear from the tool keep their exact values
        assert not np.any(changed & ~_near(bar, length / 2 + 1))
        # the tool smears over the tissue next to it along the blur direction
        a = np.deg2rad(angle)
        ahead = np.zeros_like(bar)
        ys, xs = np.nonzero(bar)
        for s in (1, 2, 3):
            yy = np.clip(np.rint(ys + s * np.sin(a)).astype(int), 0, bar.shape[0] - 1)
            xx = np.clip(np.rint(xs + s * np.cos(a)).astype(int), 0, bar.shape[1] - 1)
            ahead[yy, xx] = True
        ahead &= ~bar
        assert ahead.any() and (out.astype(int) - plain)[ahead].mean() > 20  # the bright tool spreads out
    # a blur along the bar leaves its middle as it was
    along = _run(dataclasses.replace(NEUTRAL, motion_blur_px=length, motion_blur_angle_deg=0.0), p)["image"]
    assert np.array_equal(along[24, 20:50], plain[24, 20:50].astype(np.uint8))


def test_camera_shake_blurs_the_whole_frame_along_its_direction():
    p = _tool_passes()
    img, lab, k, bar = p
    stripes = np.where((np.arange(80) // 4) % 2 == 0, 0.8, 0.05).astype(np.float32) * np.ones((48, 1), np.float32)
    img = {f"V.Combined.{c}": stripes for c in "RGB"}  # vertical stripes 4 px wide
    q = (img, lab, k, bar)
    plain = _run(NEUTRAL, q)["image"].astype(float)
    across = _run(dataclasses.replace(NEUTRAL, motion_blur_px=8, motion_blur_mode="frame"), q)["image"].astype(float)
    along = _run(dataclasses.replace(NEUTRAL, motion_blur_px=8, motion_blur_mode="frame",
                                     motion_blur_angle_deg=90.0), q)["image"].astype(float)
    mid = np.s_[:, 8:-8]
    assert plain[mid].std() > 80 and across[mid].std() < 0.3 * plain[mid].std()  # stripes smeared out
    assert np.array_equal(along[mid], plain[mid])  # a blur along the stripes changes nothing


def test_smoke_is_a_whitish_veil_thicker_far_away():
    p = _tool_passes()
    bar = p[3]
    plain = _run(NEUTRAL, p)["image"].astype(float)
    fx = dataclasses.replace(NEUTRAL, smoke=0.5, smoke_color=(0.7, 0.7, 0.7))
    out = _run(fx, p)["image"].astype(float)
    tissue = ~bar
    assert (out[tissue] >= plain[tissue] - 1).all() and (out - plain)[tissue].mean() > 10  # dark tissue lifts
    assert out[tissue].std() < plain[tissue].std()  # and loses contrast
    # with depth: the far half (15 cm) is veiled more than the near half (5 cm)
    deep = _run(dataclasses.replace(fx, smoke_depth_m=0.05), p)["image"].astype(float)
    near, far = tissue & (np.arange(80)[None, :] < 40), tissue & (np.arange(80)[None, :] >= 40)
    no_depth = (out - plain).mean(-1)
    gain = (deep - plain).mean(-1) / np.maximum(no_depth, 1)
    assert gain[far & (no_depth > 10)].mean() > gain[near & (no_depth > 10)].mean() + 0.2


def test_scene_effects_with_probability_zero_leave_everything_as_before():
    over = {"render.resolution": [64, 36]}
    off = Sampler(load_config("default", {**over, "camera_effects.smoke_prob": 0.0,
                                          "camera_effects.motion_blur_prob": 0.0}))
    on = Sampler(load_config("default", {**over, "camera_effects.smoke_prob": 1.0,
                                         "camera_effects.motion_blur_prob": 1.0}))
    new = ("smoke", "smoke_color", "smoke_depth_m", "motion_blur_px", "motion_blur_angle_deg", "motion_blur_mode")
    for i in range(3):
        a, b = off(2, i).effects, on(2, i).effects
        assert a.smoke == 0 and a.motion_blur_px == 0 and b.smoke > 0 and b.motion_blur_px > 0
        # the older effects draw exactly as they did (the new ones have a stream of their own)
        assert {k: v for k, v in a.__dict__.items() if k not in new} == \
               {k: v for k, v in b.__dict__.items() if k not in new}
    # and an effect at 0 is no effect: the image is the one the older effects alone give
    img, lab, k = _passes()
    base = process(img, lab, k, np.eye(4), {1: 2, 2: 6}, (32, 18, 30), effects=FX)["image"]
    zero = dataclasses.replace(FX, smoke=0.0, smoke_depth_m=0.1, motion_blur_px=0.0, motion_blur_angle_deg=40.0)
    assert np.array_equal(process(img, lab, k, np.eye(4), {1: 2, 2: 6}, (32, 18, 30), effects=zero)["image"], base)


def _decoded_luminance(img8):
    """Linear luminance of an 8-bit sRGB image, decoded here (IEC 61966-2-1), not by the code under test."""
    x = img8.astype(np.float64) / 255
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


def test_auto_exposure_meters_the_centre_to_its_target():
    h, w = 40, 64
    rng = np.random.default_rng(1)
    # a dim, textured centre inside a bright surround: only the centre may set the gain
    x = np.full((h, w, 3), 0.6, np.float32)
    x[h // 4:h - h // 4, w // 4:w - w // 4] = rng.uniform(0.01, 0.06, (h // 2, w // 2, 3))
    for gamma, target in ((1.0, 0.12), (0.8, 0.16)):
        fx = dataclasses.replace(NEUTRAL, gamma=gamma, exposure_target=target, max_gain=64.0)
        y = _decoded_luminance(apply(x, fx))
        assert y[h // 4:h - h // 4, w // 4:w - w // 4].mean() == pytest.approx(target, rel=0.03)
    # a flat grey frame metered whole: the gain is the analytic (target^(1/gamma)) / grey
    flat = np.full((h, w, 3), 0.05, np.float32)
    fx = dataclasses.replace(NEUTRAL, gamma=0.8, exposure_target=0.14, metering="frame")
    assert auto_exposure_gain(flat, fx) == pytest.approx(0.14 ** (1 / 0.8) / 0.05, rel=1e-4)
    # held within max_gain, and outside the field-of-view circle nothing is metered
    assert auto_exposure_gain(flat * 0.01, dataclasses.replace(fx, max_gain=4.0)) == pytest.approx(4.0)
    lit = flat.copy()
    lit[:, : w // 2] = 0.9  # bright left half, outside a circle on the right
    circle = (48.0, 20.0, 12.0)
    assert auto_exposure_gain(lit, fx, circle) == pytest.approx(0.14 ** (1 / 0.8) / 0.05, rel=1e-4)
    assert metering_mask(w, h, "centre", circle).sum() < metering_mask(w, h, "frame", circle).sum()


def test_sharpening_adds_grey_overshoot_at_edges_only():
    h, w = 24, 48
    x = np.full((h, w, 3), 0.05, np.float32)
    x[:, w // 2:] = 0.3  # a vertical step edge, grey
    plain = apply(x, NEUTRAL).astype(int)
    sharp = apply(x, dataclasses.replace(NEUTRAL, sharpen=1.5, sharpen_px=1.0)).astype(int)
    row_p, row_s = plain[h // 2], sharp[h // 2]
    assert np.array_equal(row_s[:8], row_p[:8]) and np.array_equal(row_s[-8:], row_p[-8:])  # flat: untouched
    assert row_s[w // 2 - 1, 1] < row_p[w // 2 - 1, 1] - 3 and row_s[w // 2, 1] > row_p[w // 2, 1] + 3  # overshoot
    assert (row_s[:, 0] == row_s[:, 1]).all() and (row_s[:, 1] == row_s[:, 2]).all()  # no colour fringe


def test_auto_exposure_and_sharpening_touch_no_label_and_draw_apart():
    p = _tool_passes()
    plain = _run(NEUTRAL, p)
    fx = dataclasses.replace(NEUTRAL, exposure_target=0.15, sharpen=1.0, sharpen_px=1.0)
    a = _run(fx, p)
    for key in ("segmentation", "instances", "depth", "normals"):
        assert np.array_equal(plain[key], a[key]), key
    assert not np.array_equal(a["image"], plain["image"])
    over = {"render.resolution": [64, 36]}
    off = Sampler(load_config("default", over))
    on = Sampler(load_config("default", {**over, "camera_effects.auto_exposure": True,
                                         "camera_effects.sharpen": [0.5, 1.5]}))
    new = ("exposure_target", "sharpen", "sharpen_px")
    for i in range(3):
        a, b = off(2, i).effects, on(2, i).effects
        assert a.exposure_target == 0 and a.sharpen == 0 and 0.11 <= b.exposure_target <= 0.17 and b.sharpen >= 0.5
        assert {k: v for k, v in a.__dict__.items() if k not in new} == \
               {k: v for k, v in b.__dict__.items() if k not in new}
