"""The label-efficiency curve of 'sim2real experiment' and its Fourier arm (f), on tiny fake data."""

import json

import numpy as np
import pytest

from sim2real.errors import Sim2RealError


@pytest.fixture
def setup(fake_render_dataset, tmp_path, monkeypatch):
    from fakes import write_fake_real_folder

    import sim2real.segment.train as train_mod
    from sim2real.segment.experiment import ExperimentConfig
    from sim2real.translate.fourier import fourier_dataset

    real = write_fake_real_folder(tmp_path / "real", n=12, size=(64, 32), videos=6)  # 2 frames per video
    calls = []
    real_train = train_mod.train

    def spy(items, out, cfg, **kw):  # every training run, with the videos it saw
        calls.append({"dir": str(out), "videos": sorted({it.video for it in items}), "n": len(items),
                      "init": kw.get("init")})
        return real_train(items, out, cfg, **kw)

    monkeypatch.setattr(train_mod, "train", spy)
    fda = fourier_dataset(fake_render_dataset, [real / "images"], tmp_path / "fda", k=1, seed=0)["out"]
    cfg = ExperimentConfig(real=str(real), render=str(fake_render_dataset), fourier=fda, train_videos=4,
                           seeds=(0, 1), size=(32, 16), steps=2, finetune_steps=1, batch=2, base=4, curve=(1, 2, 4))
    return cfg, calls, tmp_path


def _run(cfg, out, arms=("a", "f")):
    from sim2real.segment.experiment import run_experiment

    return run_experiment(cfg, out, list(arms), device="cpu", progress=False, realism=False)


def test_curve_nested_held_out_pretrained_and_reported(setup):
    from sim2real.io import read_png
    from sim2real.segment.checkpoint import load_checkpoint

    cfg, calls, tmp = setup
    out = tmp / "exp"
    res = _run(cfg, out)
    train_v, test_v = res["split"]["train_videos"], res["split"]["test_videos"]
    # arm (f) ran and its leak check read the videos the Fourier set recorded (all six: none held out)
    assert res["arms"]["f"]["runs"] and res["held_out_seen"]["f"]["videos"] == sorted(test_v)
    curve = res["curve"]
    # the pre-training arm is the zero-label arm with the best mean Dice over both classes
    score = {a: np.mean([res["arms"][a]["mean"][c]["dice"] for c in cfg.classes]) for a in ("a", "f")}
    assert curve["pretrain_arm"] == max(score, key=score.get)
    pre = curve["pretrain_arm"]
    # each point is trained for both seeds, real-only and pre-trained
    point_calls = [c for c in calls if "/curve/" in c["dir"]]
    assert len(point_calls) == 3 * 2 * 2
    by_n = {}
    for c in point_calls:
        n = int(c["dir"].split("/curve/n")[1].split("_")[0])
        assert c["n"] == 2 * n and len(c["videos"]) == n  # n videos of 2 labelled frames each
        assert set(c["videos"]) <= set(train_v) and not set(c["videos"]) & set(test_v)
        by_n.setdefault(n, set()).add(tuple(c["videos"]))
        if "_pre-" in c["dir"]:
            seed = c["dir"].rsplit("seed", 1)[1]
            assert str(c["init"]).endswith(f"{pre}/seed{seed}/checkpoint.pt")
            assert load_checkpoint(c["dir"])["init_from"] == str(c["init"])
        else:
            assert c["init"] is None
    assert all(len(v) == 1 for v in by_n.values())  # one subset per n, whatever the seed or pre-training
    s1, s2, s4 = (set(by_n[n].pop()) for n in (1, 2, 4))
    assert s1 < s2 < s4 == set(train_v)
    # report: table rows, gains, the plot
    points = {(p["n_videos"], p["pretrain"]): p for p in curve["points"]}
    assert set(points) == {(n, p) for n in (1, 2, 4) for p in (None, pre)}
    for n in (1, 2, 4):
        p, b = points[(n, pre)], points[(n, None)]
        assert len(p["runs"]) == 2 and p["videos"] == curve["order"][:n]
        for c in cfg.classes:
            want = np.mean([r["overall"][c]["dice"] for r in p["runs"]]) - np.mean([r["overall"][c]["dice"]
                                                                                    for r in b["runs"]])
            assert p["gain"][c] == pytest.approx(want)
    md = (out / "report.md").read_text()
    assert "Label-efficiency curve" in md and "curve.png" in md and "Fourier-transferred" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| 1 |") or ln.startswith("| 2 |") or ln.startswith("| 4 |")]
    assert len(rows) == 6 and sum("real only" in r for r in rows) == 3
    saved = json.loads((out / "report.json").read_text())
    assert saved["curve"]["pretrain_arm"] == pre and len(saved["curve"]["points"]) == 6
    png = read_png(out / "curve.png")
    assert png.ndim == 3 and png.shape[2] == 3 and png.shape[0] > 100
    from sim2real.segment.curveplot import COLOURS

    for colour in COLOURS[:2]:  # a line of each class
        assert (png == np.array(colour, np.uint8)).all(-1).sum() > 20

    # resume: nothing is trained again, the same figures come back
    calls.clear()
    again = _run(cfg, out)
    assert calls == [] and again["curve"]["points"] == curve["points"]
    from sim2real.segment.experiment import ExperimentConfig

    plain = _run(ExperimentConfig(**{**cfg.__dict__, "curve": ()}), out)  # a call without --curve still reports it
    assert calls == [] and plain["curve"]["points"] == curve["points"] and plain["curve"]["pretrain_arm"] == pre
    # a new point: only its runs are trained, and its subset nests with the others
    calls.clear()
    more = _run(ExperimentConfig(**{**cfg.__dict__, "curve": (1, 2, 3, 4)}), out)
    assert sorted({c["dir"].split("/curve/")[1].split("/")[0] for c in calls}) == ["n3_pre-" + pre, "n3_real"]
    assert set(s2) < set(calls[0]["videos"]) < s4
    assert len(more["curve"]["points"]) == 8


def test_curve_given_arm_and_bad_settings(setup):
    from sim2real.segment.experiment import ExperimentConfig

    cfg, calls, tmp = setup
    with pytest.raises(Sim2RealError, match="training video"):
        _run(ExperimentConfig(**{**cfg.__dict__, "curve": (1, 8)}), tmp / "x1")
    assert calls == []  # refused before anything is trained
    with pytest.raises(Sim2RealError, match="--pretrain-arm"):
        _run(ExperimentConfig(**{**cfg.__dict__, "pretrain_arm": "c"}), tmp / "x2")
    # a given arm that was not run: the real-only points are trained, the pre-trained ones skipped
    one = ExperimentConfig(**{**cfg.__dict__, "curve": (1,), "seeds": (0,), "pretrain_arm": "f"})
    res = _run(one, tmp / "x3", arms=("a",))
    assert [(p["n_videos"], p["pretrain"]) for p in res["curve"]["points"]] == [(1, None)]
    res = _run(one, tmp / "x3", arms=("f",))
    assert [(p["n_videos"], p["pretrain"]) for p in res["curve"]["points"]] == [(1, None), (1, "f")]


def test_experiment_cli_curve_options(setup, capsys):
    from sim2real.cli import main

    cfg, calls, tmp = setup
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "--real", cfg.real, "--out", str(tmp / "c"), "--curve", "1,x"])
    assert exc.value.code == 2 and "--curve" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "--real", cfg.real, "--out", str(tmp / "c"), "--curve", "5", "--train-videos", "4"])
    assert exc.value.code == 2 and "4 training video(s)" in capsys.readouterr().err
    # every class scored needs a mask value of the real folder
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "--real", cfg.real, "--out", str(tmp / "c"), "--classes", "gallbladder,tool,cystic_duct"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "cystic_duct has no --real-map entry" in err and "Traceback" not in err
