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
TINY = {"render.resolution": [64, 40], "render.samples": 2, "render.denoise": False}


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
    args = [sys.executable, str(REPO / "sim2real" / "render.py"), "--out", str(out), "--count", "6",
            "--set", "render.resolution=[64, 40]", "--set", "render.samples=2", "--set", "render.denoise=false"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "samples" / "000001").exists():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.name for p in (out / "samples").iterdir() if not p.name.startswith("."))
    assert 2 <= len(done_before) < 6
    # whatever is visible is complete
    assert verify(out) == {}
    rc = subprocess.call(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert rc == 0
    assert len(open_dataset(out)) == 6 and verify(out) == {}
    assert not [p for p in (out / "samples").iterdir() if p.name.startswith(".")]  # partials cleaned
    _ref = tmp_path / "ref"
    run(RenderJob("default", str(_ref), 6, overrides={"render.resolution": [64, 40], "render.samples": 2,
                                                        "render.denoise": False}))
    _assert_same_labels(out, _ref)


def test_meta_records_what_users_need(tmp_path):
    run(RenderJob("default", str(tmp_path / "m"), 1, seed=1,
                  overrides={**TINY, "instruments.count": [2, 2]}))
    meta = json.loads((tmp_path / "m" / "samples" / "000000" / "meta.json").read_text())
    assert meta["seed"] == 1 and meta["resolution"] == [64, 40]
    k = np.array(meta["camera"]["K"])
    assert k.shape == (3, 3) and k[0, 2] == 32 and k[1, 2] == 20
    assert np.allclose(np.array(meta["camera"]["camera_to_world"])[3], [0, 0, 0, 1])
    assert len(meta["instruments"]) == 2
    assert meta["instruments_requested"] == meta["instruments_placed"] == 2 and meta["instruments_note"] == ""
    ins = meta["instruments"][0]
    for key in ("pose_world", "pose_camera", "tip_world", "tip_camera", "kind"):
        assert key in ins
    c2w = np.array(meta["camera"]["camera_to_world"])
    assert np.allclose(c2w @ np.array(ins["pose_camera"]), np.array(ins["pose_world"]), atol=1e-9)
    info = json.loads((tmp_path / "m" / "dataset.json").read_text())
    assert info["classes"][2]["name"] == "gallbladder" and "depth" in info["conventions"]
    assert meta["package_version"] and meta["render"]["blender_version"]


def test_gpu_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    from sim2real.cli import main

    with pytest.raises(SystemExit) as e:
        main(["render", "--out", str(tmp_path / "g"), "--count", "1", "--set", "render.device='GPU'",
              "--set", "render.resolution=[32, 24]", "--no-preview"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "sees no GPU" in err and "render.device = 'CPU'" in err
    assert not list((tmp_path / "g" / "samples").glob("0*"))
