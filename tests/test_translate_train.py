"""Translator training: finite changing losses, exact resume, checkpoints, Ctrl-C, bad inputs."""

import os
import pickle
import signal

import numpy as np
import pytest
import torch

from sim2real.errors import DatasetError
from sim2real.translate.checkpoint import CheckpointError, load_checkpoint
from sim2real.translate.config import load_config
from sim2real.translate.data import RealFrames, SimImages
from sim2real.translate.trainer import Trainer

torch.set_num_threads(1)  # 2 threads on a shared 2-core box are slower than 1

TINY = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
        "data": {"load_size": 32, "crop": [32, 40]},
        "train": {"log_every": 1, "sample_every": 2, "checkpoint_every": 100, "sample_k": 2, "sample_rows": 2}}


def tiny_cfg(**train):
    return load_config(None, {**TINY, "train": {**TINY["train"], **train}})


def make_trainer(render, real, run, **train):
    cfg = tiny_cfg(**train)
    return Trainer(cfg, SimImages(render), RealFrames([real / "images"], cfg.data), run, "cpu")


def test_tiny_training_losses_finite_and_changing(fake_render_dataset, fake_real_folder, tmp_path):
    tr = make_trainer(fake_render_dataset, fake_real_folder, tmp_path / "run")
    w0 = tr.gen_real.up.net[-1].conv.weight.detach().clone()
    losses = [tr.train_step() for _ in range(3)]
    for rec in losses:
        assert all(np.isfinite(v) for v in rec.values()), rec
    assert losses[0]["g"] != losses[-1]["g"] and losses[0]["d"] != losses[-1]["d"]
    assert not torch.equal(w0, tr.gen_real.up.net[-1].conv.weight)
    # the EMA generator follows, but is not the raw generator
    assert not torch.equal(tr.ema_real.up.net[-1].conv.weight, tr.gen_real.up.net[-1].conv.weight)


def _all_state(tr):
    st = tr.state()
    out = {}
    for group in ("model", "ema"):
        for net, sd in st[group].items():
            for k, v in sd.items():
                out[f"{group}.{net}.{k}"] = v
    for name, opt in (("g", tr.opt_g), ("d", tr.opt_d)):
        for i, s in opt.state_dict()["state"].items():
            for k, v in s.items():
                out[f"opt{name}.{i}.{k}"] = v
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_n_steps_equals_2n_straight(fake_render_dataset, fake_real_folder, tmp_path, workers):
    n = 2
    # the straight run draws its batches in the loop, the split run in `workers` processes
    straight = make_trainer(fake_render_dataset, fake_real_folder, tmp_path / "a", workers=0)
    straight.fit(2 * n)

    first = make_trainer(fake_render_dataset, fake_real_folder, tmp_path / "b", workers=workers)
    first.fit(n)
    ck = load_checkpoint(tmp_path / "b" / "checkpoint.pt", kinds=("train",))
    assert ck["step"] == n
    resumed = make_trainer(fake_render_dataset, fake_real_folder, tmp_path / "b", workers=workers)
    torch.manual_seed(1234)  # global RNG state must not matter
    resumed.load_state(ck)
    resumed.fit(2 * n)

    a, b = _all_state(straight), _all_state(resumed)
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, diff[:5]
    assert resumed.step == straight.step == 2 * n
    # the loss log has one line per step, no duplicates after the resume
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in (tmp_path / "b" / "losses.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 2 * n + 1))
    assert sorted(p.name for p in (tmp_path / "b" / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_checkpoint_loads_weights_only_and_rejects_tampered_or_wrong_files(fake_render_dataset, fake_real_folder,
                                                                         tmp_path):
    tr = make_trainer(fake_render_dataset, fake_real_folder, tmp_path / "run")
    path = tr.save()
    torch.load(path, weights_only=True)  # the plain safe loader accepts it
    ck = load_checkpoint(path)
    assert ck["kind"] == "train" and ck["config"]["model"]["gen_dim"] == 8

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    tampered = tmp_path / "tampered.pt"
    payload = torch.load(path, weights_only=True)
    payload["extra"] = Evil()
    torch.save(payload, tampered)
    with pytest.raises(CheckpointError, match=r"cannot be loaded safely.*weights_only"):
        load_checkpoint(tampered)

    wrong = tmp_path / "wrong.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, wrong)
    with pytest.raises(CheckpointError, match=r"not a sim2real translator checkpoint"):
        load_checkpoint(wrong)

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"damaged or not a PyTorch file"):
        load_checkpoint(truncated)

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError):
        load_checkpoint(garbage)

    with pytest.raises(CheckpointError, match=r"not found"):
        load_checkpoint(tmp_path / "missing.pt")

    # weights that do not fit the stored config (edited shapes)
    payload = torch.load(path, weights_only=True)
    payload["model"]["gen_real"]["mlp.net.0.weight"] = torch.zeros(3, 3)
    bad_shape = tmp_path / "bad_shape.pt"
    torch.save(payload, bad_shape)
    other = make_trainer(fake_render_dataset, fake_real_folder, tmp_path / "run2")
    with pytest.raises(CheckpointError, match=r"gen_real weights do not fit"):
        other.load_state(load_checkpoint(bad_shape))


def test_ctrl_c_saves_a_checkpoint_and_stops_cleanly(fake_render_dataset, fake_real_folder, tmp_path):
    tr = make_trainer(fake_render_dataset, fake_real_folder, tmp_path / "run")

    def interrupt(trainer):
        if trainer.step == 2:  # what Ctrl-C runs, called here instead of signalling the test process
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the tests run in a background job
    status = tr.fit(10, on_step=interrupt)
    assert status == "interrupted" and tr.step == 2
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 2
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_ctrl_c_to_the_train_command_stops_it_with_a_checkpoint_and_exit_130(fake_render_dataset, fake_real_folder,
                                                                             tmp_path):
    """A real Ctrl-C (SIGINT to the command's process group: trainer and batch workers) while it trains."""
    import json
    import subprocess
    import sys
    import time

    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[model]\ngen_dim = 8\nmlp_dim = 16\nn_res = 1\ndis_dim = 8\ndis_n_layer = 2\n"
                   "dis_num_scales = 2\n[data]\nload_size = 32\ncrop = [32, 40]\n[train]\nlog_every = 1\n"
                   "sample_every = 1000\ncheckpoint_every = 1000\nworkers = 2\n")
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parent.parent)}
    p = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "train", "--sim", str(fake_render_dataset),
                          "--real", str(fake_real_folder / "images"), "--out", str(run), "--config", str(cfg),
                          "--threads", "1", "--max-iter", "100000"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        log = run / "losses.jsonl"
        while not (log.is_file() and log.read_text().count("\n") >= 2):  # it is training
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.1)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    step = load_checkpoint(run / "checkpoint.pt")["step"]
    assert f"interrupted at step {step}; checkpoint saved" in err and "Traceback" not in err
    assert [json.loads(ln)["step"] for ln in log.read_text().splitlines()] == list(range(1, step + 1))


def test_empty_real_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no real images or videos found under .*empty"):
        RealFrames([tmp_path / "empty"], tiny_cfg().data)
    with pytest.raises(DatasetError, match=r"does not exist"):
        RealFrames([tmp_path / "nope"], tiny_cfg().data)


def test_unreadable_real_image_is_named(fake_render_dataset, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "broken.jpg").write_bytes(b"not a jpeg at all")
    cfg = tiny_cfg()
    tr = Trainer(cfg, SimImages(fake_render_dataset), RealFrames([tmp_path / "real"], cfg.data), tmp_path / "run")
    with pytest.raises(DatasetError) as e:
        tr.train_step()
    with pytest.raises(DatasetError) as in_worker:
        tr.fit(2)  # the same error, raised in a batch worker process
    # imageio explains over several lines (plugins to install) when PyAV/OpenCV are absent;
    # the user is promised one line naming the file and the fix
    for msg in (str(e.value), str(in_worker.value)):
        assert "\n" not in msg and len(msg) < 500
        assert f"real frame {tmp_path / 'real' / 'broken.jpg'} is unreadable" in msg and "delete or replace" in msg


def test_wrong_sim_dataset_is_a_clear_error(tmp_path, fake_real_folder):
    with pytest.raises(DatasetError, match=r"not a sim2real data set"):
        SimImages(fake_real_folder)
    (tmp_path / "empty_ds").mkdir()
    from sim2real.classes import DEFAULT_TABLE
    from sim2real.dataset.format import DatasetWriter

    DatasetWriter(tmp_path / "empty_ds", {"kind": "render", "classes": DEFAULT_TABLE.to_json()})
    with pytest.raises(DatasetError, match=r"holds no samples"):
        SimImages(tmp_path / "empty_ds")
    DatasetWriter(tmp_path / "tr_ds", {"kind": "translation", "classes": DEFAULT_TABLE.to_json()})
    with pytest.raises(DatasetError, match=r"is a translation data set"):
        SimImages(tmp_path / "tr_ds")


def test_real_videos_are_sampled_at_the_given_rate(tmp_path):
    import imageio.v3 as iio

    frames = (np.random.default_rng(0).random((20, 48, 64, 3)) * 255).astype(np.uint8)
    (tmp_path / "vids").mkdir()
    iio.imwrite(tmp_path / "vids" / "clip.gif", frames, duration=100, loop=0)  # 10 fps, 2 s
    try:
        iio.imwrite(tmp_path / "vids" / "clip.mp4", frames, plugin="pyav", fps=10, codec="libx264")
        expected = 8
    except Exception:  # no video plugin installed: GIF only
        expected = 4
    cfg = load_config(None, {**TINY, "data": {**TINY["data"], "video_fps": 2.0}})
    rf = RealFrames([tmp_path / "vids"], cfg.data)
    assert len(rf) == expected
    img = rf.get(0)
    assert img.dtype == np.uint8 and min(img.shape[:2]) == int(np.ceil(32 * 1.2))


def test_cli_train_refuses_to_overwrite_and_resume_needs_checkpoint(fake_render_dataset, fake_real_folder, tmp_path):
    from sim2real.cli import main

    run = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", "--sim", str(fake_render_dataset), "--real", str(fake_real_folder / "images"),
              "--out", str(run), "--resume"])
    assert e.value.code == 2
    make_trainer(fake_render_dataset, fake_real_folder, run).save()
    with pytest.raises(SystemExit) as e:
        main(["train", "--sim", str(fake_render_dataset), "--real", str(fake_real_folder / "images"),
              "--out", str(run)])
    assert e.value.code == 2


@pytest.mark.shared_data
def test_endoscapes_frames_load_as_the_real_domain(shared_data):
    cfg = tiny_cfg()
    rf = RealFrames([shared_data / "real" / "endoscapes-dev" / "images"], cfg.data)
    assert len(rf) == 343
    img = rf.get(0)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[0] <= 480


def test_cli_set_overrides_a_new_runs_config_and_resume_refuses_it(fake_render_dataset, fake_real_folder, tmp_path,
                                                                    capsys):
    import json

    from sim2real.cli import main

    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[model]\ngen_dim = 8\nmlp_dim = 16\nn_res = 1\ndis_dim = 8\ndis_n_layer = 2\ndis_num_scales = 2\n"
                   "[data]\nload_size = 32\ncrop = [32, 40]\n[train]\nsample_every = 100\nlog_every = 1\n")
    run = tmp_path / "run"
    common = ["train", "--sim", str(fake_render_dataset), "--real", str(fake_real_folder), "--out", str(run),
              "--threads", "1"]
    main(common + ["--config", str(cfg), "--set", "loss.nce=0.5", "--set", "loss.semantic=0", "--max-iter", "1"])
    stored = json.loads((run / "config.json").read_text())
    assert stored["loss"]["nce"] == 0.5 and stored["loss"]["semantic"] == 0 and stored["model"]["gen_dim"] == 8
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(common + ["--resume", "--set", "loss.nce=1", "--max-iter", "2"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "--set" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        main(common[:-4] + ["--out", str(tmp_path / "run2"), "--config", str(cfg), "--set", "loss.nxe=1"])
    assert e.value.code == 2 and "loss.nxe" in capsys.readouterr().err
