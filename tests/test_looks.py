"""Tissue looks (burns, film, wet streaks, bands), fields of view, the randomized preset,
and benchmarks/fov_stats.py."""

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sim2real.defaults import TISSUES

from sim2real.classes import DEFAULT_TABLE
from sim2real.config import load_config
from sim2real.scene.sampler import Sampler

LOOKS = ("burn", "burn_color", "film", "film_color", "streaks", "bands", "looks_seed")
LABELS = ("segmentation", "instances", "depth", "normals")
SMALL = {"render.resolution": [64, 36], "render.samples": 1, "render.denoise": False}
NO_LOOKS = {f"{t}.{k}": 0.0 for t in TISSUES for k in ("burn", "film", "streaks", "bands")}


def _render(desc, tmp_path):
    from fakes import render_labelled

    return render_labelled(desc, tmp_path)


def _without(d: dict, *keys) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def test_looks_draw_from_their_own_stream():
    """Switching every look off changes no geometry, camera, light, field of view or other
    material draw: the looks come from the appended "looks" stream only."""
    on, off = Sampler(load_config("default")), Sampler(load_config("default", NO_LOOKS))
    for i in range(3):
        a, b = on(0, i), off(0, i)
        assert [o.name for o in a.objects] == [o.name for o in b.objects]
        for x, y in zip(a.objects, b.objects):
            assert np.array_equal(x.vertices, y.vertices) and np.array_equal(x.faces, y.faces)
            assert _without(dataclasses.asdict(x.material), *LOOKS) == _without(dataclasses.asdict(y.material), *LOOKS)
            assert y.material.burn == y.material.film == y.material.streaks == y.material.bands == 0.0
        assert np.array_equal(a.camera.camera_to_world, b.camera.camera_to_world)
        assert a.render == b.render and a.light == b.light and a.effects == b.effects
    gb = next(o for o in on(0, 0).objects if o.name == "gallbladder").material
    assert gb.film > 0 and gb.streaks > 0  # the default gallbladder has film and streaks


@pytest.mark.bpy
def test_looks_change_the_image_only(tmp_path):
    """Strong burns, film, streaks and bands on every tissue: labels byte-identical to the
    same scene with every look off, the image not."""
    desc = Sampler(load_config("default", {**SMALL, "camera_effects.enabled": False}))(0, 1)
    strong = dict(burn=0.1, film=0.5, streaks=1.0, bands=0.8)
    looks = dataclasses.replace(desc, objects=[dataclasses.replace(o, material=dataclasses.replace(o.material, **strong))
                                               if o.class_id not in (6, 7) else o for o in desc.objects])
    plain = dataclasses.replace(desc, objects=[dataclasses.replace(o, material=dataclasses.replace(
        o.material, burn=0.0, film=0.0, streaks=0.0, bands=0.0)) for o in desc.objects])
    a, b = _render(looks, tmp_path), _render(plain, tmp_path)
    for k in LABELS:
        assert a[k].tobytes() == b[k].tobytes(), k
    inside = a["segmentation"] > 0
    diff = np.abs(a["image"].astype(int) - b["image"].astype(int)).max(-1)
    assert np.mean(diff[inside] > 8) > 0.05  # the looks show


def test_full_frame_share_and_circle_draws():
    """render.fov_full_frame decides from its own stream: the circle, when there is one, and
    the noise seed are the same whatever the share; about that share of samples has none."""
    s0 = Sampler(load_config("default", {"render.fov_full_frame": 0.0}))
    s1 = Sampler(load_config("default", {"render.fov_full_frame": 1.0}))
    sd = Sampler(load_config("default"))
    w, h = 452, 256
    full = 0
    for i in range(300):
        r = s0.streams(0, i)
        a = s0.render_settings(r["render"], r["fov"])
        r = s1.streams(0, i)
        b = s1.render_settings(r["render"], r["fov"])
        r = sd.streams(0, i)
        c = sd.render_settings(r["render"], r["fov"])
        assert a.fov_mask is not None and b.fov_mask is None and a.noise_seed == b.noise_seed == c.noise_seed
        cx, cy, rad = a.fov_mask
        assert 0.33 <= rad / np.hypot(w, h) <= 0.47
        assert abs(cx - w / 2) <= 0.06 * w + 1e-9 and abs(cy - h / 2) <= 0.06 * h + 1e-9
        full += c.fov_mask is None
        assert c.fov_mask in (None, a.fov_mask)
    assert 0.06 < full / 300 < 0.17  # 0.11 by default (binomial sd 0.018)


@pytest.mark.bpy
def test_full_frame_has_lit_labelled_corners(tmp_path):
    desc = Sampler(load_config("default", {**SMALL, "render.fov_full_frame": 1.0}))(0, 2)
    assert desc.render.fov_mask is None
    a = _render(desc, tmp_path)
    h, w = a["segmentation"].shape
    for ys, xs in ((slice(0, 3), slice(0, 3)), (slice(0, 3), slice(w - 3, w)),
                   (slice(h - 3, h), slice(0, 3)), (slice(h - 3, h), slice(w - 3, w))):
        assert np.all(a["segmentation"][ys, xs] > 0) and np.all(np.isfinite(a["depth"][ys, xs]))
        assert a["image"][ys, xs].max(-1).mean() > 2  # not the black border of a circle


@pytest.mark.bpy
def test_circle_from_meta_bounds_the_labels(tmp_path):
    """fov_full_frame = 0: nothing is labelled or lit outside the circle meta.json records
    (the mask recomputed here from its centre and radius alone), and inside it every ray
    hits tissue."""
    from sim2real.imaging.postprocess import sample_meta

    desc = Sampler(load_config("default", {**SMALL, "render.fov_full_frame": 0.0}))(0, 2)
    a = _render(desc, tmp_path)
    meta = sample_meta(desc, a, DEFAULT_TABLE)
    assert meta["render"]["fov_full_frame"] is False
    c = meta["fov_mask"]
    h, w = a["segmentation"].shape
    yy, xx = np.mgrid[0:h, 0:w]
    outside = np.hypot(xx + 0.5 - c["cx"], yy + 0.5 - c["cy"]) > c["radius"]
    assert outside[0, 0] and outside[-1, -1] and not outside[h // 2, w // 2]
    assert not outside[0].all() and not outside[-1].all()  # the circle is taller than the frame, as measured
    assert np.all(a["segmentation"][outside] == 0) and np.all(a["instances"][outside] == 0)
    assert np.all(np.isinf(a["depth"][outside])) and np.all(a["image"][outside] == 0)
    assert np.all(a["segmentation"][~outside] > 0)


@pytest.mark.bpy
def test_randomized_preset_renders_the_default_labels(tmp_path):
    """Same geometry and framing as the default preset (a fair comparison): the labels of a
    sample equal the default preset's; the image does not."""
    assert "randomized" in __import__("sim2real.config", fromlist=["x"]).preset_names()
    d = Sampler(load_config("default", SMALL))(0, 0)
    r = Sampler(load_config("randomized", SMALL))(0, 0)
    a, b = _render(r, tmp_path), _render(d, tmp_path)
    for k in LABELS:
        assert a[k].tobytes() == b[k].tobytes(), k
    assert a["image"].std() > 5 and not np.array_equal(a["image"], b["image"])


# --- benchmarks/fov_stats.py ---------------------------------------------------------------

def _fov_stats():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "fov_stats.py"
    spec = importlib.util.spec_from_file_location("fov_stats", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fov_stats_finds_full_frames_and_circles(tmp_path, capsys):
    from PIL import Image

    w, h = 320, 180
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    tissue = np.stack([120 + 60 * np.sin(xx / 9.0), 60 + 30 * np.cos(yy / 7.0), 70 + 20 * np.sin((xx + yy) / 13.0)], -1)
    tissue = np.clip(tissue + rng.normal(0, 8, tissue.shape), 0, 255)
    Image.fromarray(tissue.astype(np.uint8)).save(tmp_path / "1_100.jpg", quality=90)
    cx, cy, r = 171.0, 84.0, 0.40 * np.hypot(w, h)  # taller than the frame, as in most real videos
    inside = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy) <= r
    circle = np.where(inside[..., None], tissue, 16.0)  # a recorder's black is rarely 0
    Image.fromarray(circle.astype(np.uint8)).save(tmp_path / "2_100.jpg", quality=90)
    summary = _fov_stats().main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "2 frames: 1 circle, 1 full frame" in out
    assert summary["videos"]["1"]["kind"] == "full" and summary["videos"]["2"]["kind"] == "circle"
    v = summary["videos"]["2"]
    assert abs(v["radius_diag"] - 0.40) < 1.5 / np.hypot(w, h)
    assert abs(v["offset_x"] - (cx - w / 2) / w) < 1.5 / w and abs(v["offset_y"] - (cy - h / 2) / h) < 1.5 / h
    assert v["clipped"]
