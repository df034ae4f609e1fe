"""A user's own hand-made, labelled .blend renders with the same outputs as a generated scene
(sim2real/blender/user_scene.py), randomising only what the scene enables."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from sim2real.dataset.format import open_dataset, verify
from sim2real.errors import Sim2RealError
from sim2real.rendering.job import RenderJob
from sim2real.scene.geometry import intrinsics

pytestmark = pytest.mark.bpy

TINY = {"render.resolution": [64, 48], "render.samples": 1, "render.denoise": False, "render.fov_mask": False}
REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def _job(out, count=2, **kw):
    return RenderJob(preset=None, out=str(out), count=count, overrides=dict(TINY), **kw)


def _scene(camera_mode="fixed", light_mode="scene"):
    """Liver sphere (r 5 cm) at the origin, an unlabelled cube beside it, a cavity, a camera
    30 cm in front looking along +y."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.05, segments=64, ring_count=32)
    liver = bpy.context.object
    liver.name = "my_liver"
    liver["sim2real_class"] = "liver"
    bpy.ops.object.shade_smooth()
    bpy.ops.mesh.primitive_cube_add(size=0.02, location=(0.075, -0.05, 0.0))
    bpy.context.object.name = "unlabelled_cube"
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.6)
    wall = bpy.context.object
    wall.name = "cavity"
    wall["sim2real_class_id"] = 4
    bpy.ops.object.camera_add(location=(0, -0.3, 0), rotation=(math.pi / 2, 0, 0))
    scene.camera = bpy.context.object
    bpy.ops.object.light_add(type="POINT", location=(0, -0.25, 0.05))
    bpy.context.object.data.energy = 2.0
    scene["sim2real_camera"] = camera_mode
    scene["sim2real_light"] = light_mode
    return scene


def test_fixed_camera_labels_are_exact(tmp_path):
    import bpy

    from sim2real.rendering.job import run_user_scene

    scene = _scene()
    user_camera = scene.camera
    summary = run_user_scene(_job(tmp_path / "set"))
    assert summary["rendered"] == 2
    assert verify(tmp_path / "set") == {}
    s = open_dataset(tmp_path / "set")[0]
    meta, seg, depth = s.meta, s.segmentation(), s.depth()
    hfov = 2 * math.atan(18 / 50)  # Blender's default camera: 50 mm lens, 36 mm sensor
    k = np.array(meta["camera"]["K"])
    assert np.allclose(k, intrinsics(64, 48, hfov))
    c2w = np.array(meta["camera"]["camera_to_world"])
    assert np.allclose(c2w[:3, 3], [0, -0.3, 0], atol=1e-6)
    assert np.allclose(c2w[:3, 2], [0, 1, 0], atol=1e-6)  # OpenCV z: the viewing direction
    # the sphere's centre projects onto liver pixels, where the depth is 30 - 5 cm
    u, v, w = k @ (np.linalg.inv(c2w) @ [0, 0, 0, 1])[:3]
    px, py = int(u / w), int(v / w)
    assert seg[py, px] == 1
    assert depth[py, px] == pytest.approx(0.25, abs=0.002)
    # the unlabelled cube renders but is background in the labels (no depth)
    u, v, w = k @ (np.linalg.inv(c2w) @ [0.075, -0.05, 0, 1])[:3]
    assert seg[int(v / w), int(u / w)] == 0 and np.isinf(depth[int(v / w), int(u / w)])
    assert {i["name"]: i["class"] for i in meta["instances"]} == {"cavity": "abdominal_wall", "my_liver": "liver"}
    assert meta["source"]["camera_mode"] == "fixed" and meta["light"]["type"] == "scene"
    assert meta["instruments"] == []
    # the open file is as it was
    assert scene.camera == user_camera and "sim2real_camera" not in bpy.data.objects
    assert all(o.pass_index == 0 for o in bpy.data.objects)


def test_path_mode_follows_the_animation(tmp_path):
    from sim2real.rendering.job import run_user_scene

    scene = _scene("path")
    cam = scene.camera
    scene.frame_start, scene.frame_end = 1, 2
    for frame, x in ((1, 0.0), (2, 0.02)):
        cam.location = (x, -0.3, 0)
        cam.keyframe_insert("location", frame=frame)
    run_user_scene(_job(tmp_path / "set", count=3))
    assert verify(tmp_path / "set") == {}
    metas = [s.meta for s in open_dataset(tmp_path / "set")]
    assert [m["source"]["frame"] for m in metas] == [1, 2, 1]  # sample i -> frame start + i (wrapping)
    xs = [m["camera"]["camera_to_world"][0][3] for m in metas]
    assert xs == pytest.approx([0.0, 0.02, 0.0], abs=1e-6)


def test_sampler_camera_and_scope_light(tmp_path):
    from sim2real.rendering.job import run_user_scene

    _scene("sampler", "scope")
    run_user_scene(_job(tmp_path / "set", count=2, seed=1))
    assert verify(tmp_path / "set") == {}
    metas = [s.meta for s in open_dataset(tmp_path / "set")]
    poses = [np.array(m["camera"]["camera_to_world"]) for m in metas]
    assert not np.allclose(poses[0], poses[1])  # drawn per sample
    from sim2real.config import load_config

    lo, hi = load_config("default")["light"]["energy_w"]  # the scope light's power range of the preset
    for m, pose in zip(metas, poses):
        assert np.linalg.norm(pose[:3, 3]) < 0.6  # inside the labelled cavity
        assert m["target"]["class"] == "liver"  # the preset's targets that exist here
        assert m["light"]["type"] == "spot_at_camera" and lo <= m["light"]["energy_w"] <= hi
        assert m["class_pixel_counts"]["liver"] > 0


def test_bad_labels_and_cameras_are_named(tmp_path):
    import bpy

    from sim2real.rendering.job import run_user_scene

    scene = _scene()
    bpy.data.objects["my_liver"]["sim2real_class"] = "spleen"
    with pytest.raises(Sim2RealError, match="'my_liver'.*'spleen' is not a class"):
        run_user_scene(_job(tmp_path / "a"))
    for o in bpy.data.objects:
        for key in ("sim2real_class", "sim2real_class_id"):
            if key in o:
                del o[key]
    with pytest.raises(Sim2RealError, match="no labelled objects"):
        run_user_scene(_job(tmp_path / "b"))
    bpy.data.objects["my_liver"]["sim2real_class"] = "liver"
    scene.camera.data.type = "ORTHO"
    with pytest.raises(Sim2RealError, match="perspective camera"):
        run_user_scene(_job(tmp_path / "c"))
    scene["sim2real_camera"] = "orbit"
    with pytest.raises(Sim2RealError, match="sim2real_camera = 'orbit'"):
        run_user_scene(_job(tmp_path / "d"))


def test_headless_script_renders_and_resumes_a_blend(tmp_path):
    import bpy

    _scene()
    blend = tmp_path / "my_scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    out = tmp_path / "set"
    args = [sys.executable, str(REPO / "sim2real" / "render.py"), "--blend", str(blend), "--out", str(out),
            "--count", "2", *[a for k, v in TINY.items() for a in ("--set", f"{k}={str(v).lower()}")]]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert verify(out) == {} and len(open_dataset(out)) == 2
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "skipped 2" in r.stderr
    # other labels into the same folder: refused, not mixed
    bpy.data.objects["cavity"]["sim2real_class_id"] = 3
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    r = subprocess.run(args + ["--count", "3"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "different settings" in r.stderr


def test_cli_render_blend(tmp_path, capsys):
    import bpy

    from sim2real.cli import main

    _scene()
    blend = tmp_path / "cli_scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    out = tmp_path / "cli_set"
    args = ["render", "--blend", str(blend), "--out", str(out), "--count", "2", "--no-preview"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={str(v).lower()}"]
    try:
        main(args)
    except SystemExit as e:
        assert e.code in (0, None)
    assert verify(out) == {} and len(open_dataset(out)) == 2
    assert open_dataset(out)[0].meta["source"]["kind"] == "user_scene"
