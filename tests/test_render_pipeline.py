"""The render job: determinism, workers, resume after a kill, CLI and headless script (needs bpy)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sim2real.dataset.format import LABEL_KEYS, open_dataset, verify
from sim2real.rendering.job import RenderJob, run

pytestmark = pytest.mark.bpy

REPO = Path(__file__).resolve().parent.parent
TINY = {"render.resolution": [64, 40], "render.samples": 2, "render.denoise": False, "render.device": "CPU"}


def _labels(root):
    ds = open_dataset(root)
    return {s.id: {k: getattr(s, k)() for k in LABEL_KEYS} for s in ds}


def _assert_same_labels(a, b):
    la, lb = _labels(a), _labels(b)
    assert la.keys() == lb.keys() and la
    for sid in la:
        for k in LABEL_KEYS:
            assert np.array_equal(la[sid][k], lb[sid][k]), (sid, k)


def test_same_seed_same_labels_and_workers_agree(tmp_path):
    run(RenderJob("default", str(tmp_path / "a"), 4, seed=7, overrides=TINY), workers=1)
    run(RenderJob("default", str(tmp_path / "b"), 4, seed=7, overrides=TINY), workers=2)
    assert verify(tmp_path / "a") == {} and verify(tmp_path / "b") == {}
    _assert_same_labels(tmp_path / "a", tmp_path / "b")
    ia = open_dataset(tmp_path / "a")[1].image().astype(int)
    ib = open_dataset(tmp_path / "b")[1].image().astype(int)
    assert np.abs(ia - ib).mean() < 1.0  # seeded render noise
    # a different seed gives a different scene
    run(RenderJob("default", str(tmp_path / "c"), 1, seed=8, overrides=TINY))
    assert not np.array_equal(open_dataset(tmp_path / "c")[0].segmentation(),
                              open_dataset(tmp_path / "a")[0].segmentation())


def test_shards_cover_the_set_like_one_job(tmp_path):
    for i in range(2):
        run(RenderJob("default", str(tmp_path / "s"), 3, seed=2, shard=(i, 2), overrides=TINY))
    run(RenderJob("default", str(tmp_path / "one"), 3, seed=2, overrides=TINY))
    _assert_same_labels(tmp_path / "s", tmp_path / "one")


def test_rerun_skips_done_samples_and_refuses_other_settings(tmp_path):
    out = tmp_path / "d"
    run(RenderJob("default", str(out), 2, overrides=TINY))
    mtime = (out / "samples" / "000000" / "meta.json").stat().st_mtime_ns
    summary = run(RenderJob("default", str(out), 3, overrides=TINY))
    assert summary["skipped"] == 2 and summary["rendered"] == 1
    assert (out / "samples" / "000000" / "meta.json").stat().st_mtime_ns == mtime
    from sim2real.errors import DatasetError

    with pytest.raises(DatasetError, match="different settings"):
        run(RenderJob("default", str(out), 3, seed=99, overrides=TINY))


def test_kill_and_resume_leaves_no_half_sample(tmp_path):
    out = tmp_path / "k"
    tiny = ["--set", "render.resolution=[64, 40]", "--set", "render.samples=2", "--set", "render.denoise=false",
            "--set", "render.device='CPU'"]
    script = [sys.executable, str(REPO / "sim2real" / "render.py"), "--out", str(out)]
    # far more than it can render before the kill, so the kill always lands mid-job
    proc = subprocess.Popen(script + ["--count", "500", *tiny], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    samples = out / "samples"

    def mid_sample():  # two samples committed and the next one half written
        return (samples / "000001").is_dir() and any(samples.glob(".*.partial"))

    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the render ended or never started"
            if mid_sample():
                os.killpg(proc.pid, signal.SIGSTOP)  # frozen, so what we look at is what the kill leaves
                if mid_sample():
                    break
                os.killpg(proc.pid, signal.SIGCONT)  # it committed meanwhile: wait for the next one
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = sorted(p.name for p in samples.iterdir() if not p.name.startswith("."))
    assert len(done_before) >= 2 and done_before == [f"{i:06d}" for i in range(len(done_before))]
    assert list(samples.glob(".*.partial"))  # the sample the kill interrupted
    assert verify(out) == {}  # whatever is visible is complete
    n = len(done_before) + 2  # the rerun renders two more
    assert subprocess.call(script + ["--count", str(n), *tiny], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0
    assert len(open_dataset(out)) == n and verify(out) == {}
    assert not [p for p in samples.iterdir() if p.name.startswith(".")]  # partials cleaned
    # the resumed samples are the ones a fresh job renders at those indices
    run(RenderJob("default", str(tmp_path / "ref"), 2, start=n - 2, overrides=TINY))
    ref = _labels(tmp_path / "ref")
    got = _labels(out)
    assert sorted(ref) == [f"{i:06d}" for i in (n - 2, n - 1)]
    for sid in ref:
        for key in LABEL_KEYS:
            assert np.array_equal(ref[sid][key], got[sid][key]), (sid, key)


class _Watching:
    """A BlenderRenderer that, after each render, reads back what Blender itself holds: the
    camera's matrix_world, sensor, lens and shift, the output resolution, Blender's own
    projection of the instrument tips, and the tool meshes' vertices in world coordinates."""

    def __new__(cls):
        from sim2real.blender.renderer import BlenderRenderer

        class Watching(BlenderRenderer):
            seen = []

            def render(self, desc, workdir):
                import bpy
                from bpy_extras.object_utils import world_to_camera_view
                from mathutils import Vector

                out = super().render(desc, workdir)
                scene, cam = self.scene, self.scene.camera
                r = scene.render
                by_id = {o.pass_index: o for o in scene.objects if o.type == "MESH"}

                def world_vertices(obj):
                    m = np.array(obj.matrix_world)
                    v = np.array([tuple(x.co) for x in obj.data.vertices])
                    return v @ m[:3, :3].T + m[:3, 3]

                self.seen.append({
                    "matrix_world": np.array(cam.matrix_world), "lens": cam.data.lens,
                    "sensor_width": cam.data.sensor_width, "sensor_fit": cam.data.sensor_fit,
                    "shift": (cam.data.shift_x, cam.data.shift_y),
                    "size": (r.resolution_x * r.resolution_percentage // 100,
                             r.resolution_y * r.resolution_percentage // 100),
                    "aspect": (r.pixel_aspect_x, r.pixel_aspect_y),
                    "tips_view": [tuple(world_to_camera_view(scene, cam, Vector(ins.tip_world.tolist())))
                                  for ins in desc.instruments],
                    "tool_vertices": {i: world_vertices(by_id[i]) for ins in desc.instruments
                                      for i in (ins.shaft_instance_id, ins.tip_instance_id)},
                    "version": bpy.app.version,
                })
                return out

        return Watching()


def test_meta_records_what_users_need(tmp_path):
    renderer = _Watching()
    run(RenderJob("default", str(tmp_path / "m"), 1, seed=1, overrides={**TINY, "instruments.count": [2, 2]}),
        renderer=renderer)
    (bl,) = renderer.seen
    sample = open_dataset(tmp_path / "m")[0]
    meta = json.loads((tmp_path / "m" / "samples" / "000000" / "meta.json").read_text())
    assert meta["seed"] == 1 and meta["resolution"] == [64, 40] == list(bl["size"])
    assert meta["instruments_requested"] == meta["instruments_placed"] == 2 and meta["instruments_note"] == ""
    assert [ins["kind"] in ("grasper", "hook", "clip_applier") for ins in meta["instruments"]] == [True, True]

    # K from Blender's sensor, lens, shift and resolution (horizontal sensor fit, square pixels)
    w, h = bl["size"]
    assert bl["sensor_fit"] == "HORIZONTAL" and bl["aspect"] == (1.0, 1.0)
    f = bl["lens"] / bl["sensor_width"] * w
    k_blender = np.array([[f, 0, w * (0.5 - bl["shift"][0])], [0, f, h / 2 + bl["shift"][1] * w], [0, 0, 1]])
    k = np.array(meta["camera"]["K"])
    assert np.allclose(k, k_blender, rtol=1e-5, atol=1e-6)
    # camera_to_world: Blender's camera looks along its local -z with +y up; OpenCV's along +z, +y down
    c2w = np.array(meta["camera"]["camera_to_world"])
    assert np.allclose(c2w, bl["matrix_world"] @ np.diag([1.0, -1.0, -1.0, 1.0]), atol=1e-5)
    w2c = np.linalg.inv(c2w)

    inst = sample.instances()
    for ins, (xn, yn, depth) in zip(meta["instruments"], bl["tips_view"]):
        # the tip pixel and depth: Blender's own projection (normalised, origin bottom left)
        assert ins["tip_camera"][2] == pytest.approx(depth, rel=1e-4)
        assert np.allclose(ins["tip_pixel"], [xn * w, (1 - yn) * h], atol=1e-3)
        # the pose against the tool meshes Blender holds: the shaft is a cylinder along the
        # pose's +z that ends at the pose's origin (the joint); the tip reaches tip_world
        shaft = bl["tool_vertices"][ins["shaft_instance_id"]]
        tip = bl["tool_vertices"][ins["tip_instance_id"]]
        centred = shaft - shaft.mean(0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        axis *= np.sign(axis @ (tip.mean(0) - shaft.mean(0)))  # towards the tip
        along = shaft @ axis
        joint_end = shaft[along > along.max() - 1e-4].mean(0)  # the end cap's rim, centred
        pose_world = np.array(ins["pose_world"])
        assert np.allclose(pose_world[:3, 2], axis, atol=1e-3)
        assert np.allclose(pose_world[:3, 3], joint_end, atol=1e-4)
        assert np.allclose(pose_world[:3, :3].T @ pose_world[:3, :3], np.eye(3), atol=1e-9)
        assert np.allclose(np.array(ins["pose_camera"]), w2c @ pose_world, atol=1e-9)
        assert np.array(ins["tip_world"]) @ axis == pytest.approx((tip @ axis).max(), abs=5e-4)
        # what the camera sees of the tip lies where its vertices project (through K and the pose)
        pc = tip @ w2c[:3, :3].T + w2c[:3, 3]
        assert (pc[:, 2] > 0).all()
        uv = pc @ k.T
        uv = uv[:, :2] / uv[:, 2:]
        ys, xs = np.nonzero(inst == ins["tip_instance_id"])
        assert len(xs) == ins["visible_pixels"]["tip"]
        if len(xs):
            assert (xs + 0.5 >= uv[:, 0].min() - 1).all() and (xs + 0.5 <= uv[:, 0].max() + 1).all()
            assert (ys + 0.5 >= uv[:, 1].min() - 1).all() and (ys + 0.5 <= uv[:, 1].max() + 1).all()
    assert sum(ins["visible_pixels"]["tip"] for ins in meta["instruments"]) > 0  # the check above ran
    info = json.loads((tmp_path / "m" / "dataset.json").read_text())
    assert info["classes"][2]["name"] == "gallbladder" and "depth" in info["conventions"]
    assert meta["package_version"] and meta["render"]["blender_version"]


def _cycles_sees_a_gpu() -> bool:
    """Asks Cycles itself (its add-on preferences) whether any GPU backend has a device."""
    import bpy

    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"):
        try:
            devices = prefs.get_devices_for_type(backend)
        except (TypeError, ValueError):  # a backend this build does not know
            continue
        if any(d.type == backend for d in devices):
            return True
    return False


def test_render_device_gpu_renders_on_a_gpu_or_says_there_is_none(tmp_path, capsys):
    """render.device is honoured: 'GPU' renders on the GPU where Cycles sees one, and is one
    clear line (nothing written) where it does not."""
    import bpy

    from sim2real.cli import main

    gpu = _cycles_sees_a_gpu()
    try:
        main(["render", "--out", str(tmp_path / "g"), "--count", "1", "--set", "render.device='GPU'",
              "--set", "render.resolution=[32, 24]", "--set", "render.samples=2", "--no-preview"])
        code = 0
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    if gpu:
        assert code == 0, err
        assert bpy.context.scene.cycles.device == "GPU" and len(open_dataset(tmp_path / "g")) == 1
    else:
        assert code == 2 and "sees no GPU" in err and "render.device = 'CPU'" in err
        assert not list((tmp_path / "g" / "samples").glob("0*"))
