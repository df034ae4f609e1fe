"""Translation into K variants with labels carried over; export; evaluation; CLI end to end."""

import json
import os
import sys

import numpy as np
import pytest
import torch

from sim2real.dataset.format import LABEL_KEYS, open_dataset, verify
from sim2real.errors import DatasetError
from sim2real.translate.checkpoint import CheckpointError, load_checkpoint
from sim2real.translate.config import load_config
from sim2real.translate.data import RealFrames, SimImages
from sim2real.translate.inference import export, load_translator, translate_dataset
from sim2real.translate.trainer import Trainer

torch.set_num_threads(1)  # 2 threads on a shared 2-core box are slower than 1

TINY = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
        "data": {"load_size": 48, "crop": [48, 64]},
        "train": {"log_every": 1, "sample_every": 100, "checkpoint_every": 100}}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A render set, real frames from several videos, and a run trained for 2 steps."""
    from fakes import write_fake_real_folder, write_fake_render_dataset

    root = tmp_path_factory.mktemp("translate")
    render = write_fake_render_dataset(root / "render", n=6, size=(64, 48))
    real = write_fake_real_folder(root / "real", n=12, videos=4) / "images"
    cfg = load_config(None, TINY)
    tr = Trainer(cfg, SimImages(render), RealFrames([real], cfg.data), root / "run", "cpu")
    tr.fit(2)
    return {"root": root, "render": render, "real": real, "run": root / "run", "ckpt": root / "run" / "checkpoint.pt"}


def test_translation_is_a_dataset_with_labels_carried_over_byte_for_byte(world, tmp_path):
    out = tmp_path / "tr"
    summary = translate_dataset(world["ckpt"], world["render"], out, k=3, seed=7, batch=4)
    assert summary["variants_written"] == 18 and summary["copies"] + summary["links"] == 18 * 4
    ds = open_dataset(out)
    src = open_dataset(world["render"])
    assert ds.kind == "translation" and len(ds) == 18
    assert ds.ids()[:3] == ["000000_style_00", "000000_style_01", "000000_style_02"]
    assert ds.info["classes"] == src.info["classes"]
    for s in ds:
        source = src.sample(s.meta["translation"]["source_id"])
        for key in LABEL_KEYS:
            assert s.path(key).read_bytes() == source.path(key).read_bytes()
            if summary["links"]:
                assert os.path.samefile(s.path(key), source.path(key))
        img = s.image()
        assert img.shape == source.image().shape and img.dtype == np.uint8
        rec = s.meta["translation"]
        assert len(rec["style_code"]) == 8 and 0 <= rec["msssim_gray"] <= 1
        assert rec["checkpoint_sha256"] == ds.info["translation"]["checkpoint_sha256"]
        assert s.meta["class_pixel_counts"] == source.meta["class_pixel_counts"] and s.meta["id"] == s.id
    assert verify(out) == {}
    # the same reader's torch dataset works on it
    from sim2real.dataset.format import torch_dataset

    item = torch_dataset(out)[0]
    assert item["image"].shape[0] == 3 and item["segmentation"].dtype == torch.int64


def test_translation_resumes_and_refuses_other_options(world, tmp_path):
    out = tmp_path / "tr"
    translate_dataset(world["ckpt"], world["render"], out, k=2, seed=0)
    victim = out / "samples" / "000003_style_01"
    before = (out / "samples" / "000000_style_00" / "image.png").stat().st_mtime_ns
    import shutil

    shutil.rmtree(victim)
    summary = translate_dataset(world["ckpt"], world["render"], out, k=2, seed=0)
    assert summary["variants_written"] == 1 and summary["variants_skipped"] == 11
    assert (out / "samples" / "000000_style_00" / "image.png").stat().st_mtime_ns == before
    with pytest.raises(DatasetError, match=r"different settings"):
        translate_dataset(world["ckpt"], world["render"], out, k=2, seed=1)


def test_random_styles_per_image_and_synchronized(world, tmp_path):
    translate_dataset(world["ckpt"], world["render"], tmp_path / "a", k=2, seed=3)
    translate_dataset(world["ckpt"], world["render"], tmp_path / "b", k=2, seed=3, synchronized=True)
    code = lambda d, sid: json.loads((d / "samples" / sid / "meta.json").read_text())["translation"]["style_code"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert code(a, "000000_style_00") != code(a, "000001_style_00")
    assert code(b, "000000_style_00") == code(b, "000001_style_00")
    assert code(b, "000000_style_00") != code(b, "000000_style_01")
    # same seed, same codes, same images: reproducible
    translate_dataset(world["ckpt"], world["render"], tmp_path / "c", k=2, seed=3)
    assert (a / "samples/000002_style_01/image.png").read_bytes() == (tmp_path / "c/samples/000002_style_01/image.png").read_bytes()


def test_style_from_reference_images(world, tmp_path):
    translate_dataset(world["ckpt"], world["render"], tmp_path / "r", k=2, style_from=[world["real"]])
    rec = json.loads((tmp_path / "r/samples/000000_style_00/meta.json").read_text())["translation"]
    assert rec["style_origin"].startswith("reference:") and rec["style_origin"].endswith(".jpg")


def test_min_structure_redraws_and_records(world, tmp_path):
    s = translate_dataset(world["ckpt"], world["render"], tmp_path / "m", k=2, min_structure=0.999, max_redraws=2)
    assert s["redraws"] > 0
    recs = [json.loads((p / "meta.json").read_text())["translation"] for p in (tmp_path / "m/samples").iterdir()]
    assert all(r["redraws"] == 2 and r["passed_min_structure"] is False for r in recs
               if r["msssim_gray"] < 0.999)
    s = translate_dataset(world["ckpt"], world["render"], tmp_path / "z", k=2, min_structure=0.0)
    assert s["redraws"] == 0 and s["below_min_structure"] == 0


def test_export_is_small_inference_only_and_translates_identically(world, tmp_path):
    path = export(world["ckpt"], tmp_path / "translator.pt")
    ck = load_checkpoint(path)
    assert ck["kind"] == "inference" and "optim" not in ck
    assert path.stat().st_size < world["ckpt"].stat().st_size / 2
    m1, _, _ = load_translator(world["ckpt"])
    m2, _, _ = load_translator(path)
    x, st = torch.rand(1, 3, 48, 64) * 2 - 1, torch.randn(1, 3, 8)
    with torch.no_grad():
        torch.testing.assert_close(m1(x, st), m2(x, st))
    with pytest.raises(CheckpointError, match=r"'inference' checkpoint.*resume from the run's checkpoint.pt"):
        load_checkpoint(path, kinds=("train",))


def test_translate_rejects_wrong_inputs(world, tmp_path):
    with pytest.raises(DatasetError, match=r"not a sim2real data set"):
        translate_dataset(world["ckpt"], world["real"], tmp_path / "x")
    translate_dataset(world["ckpt"], world["render"], tmp_path / "t", k=1)
    with pytest.raises(DatasetError, match=r"already a translation data set"):
        translate_dataset(world["ckpt"], tmp_path / "t", tmp_path / "x2")
    with pytest.raises(CheckpointError, match=r"holds no checkpoint.pt"):
        translate_dataset(tmp_path, world["render"], tmp_path / "x3")


def test_evaluate_reports_structure_realism_baseline_and_diversity(world, tmp_path):
    from sim2real.translate.evaluate import evaluate, format_report

    translate_dataset(world["ckpt"], world["render"], tmp_path / "t", k=3)
    r = evaluate(tmp_path / "t", [world["real"]], epochs=2)
    assert 0 < r["structure"]["msssim_gray_mean"] <= 1 and 0 <= r["structure"]["edge_f1_mean"] <= 1
    for key in ("two_sample_accuracy_translated", "two_sample_accuracy_untranslated",
                "two_sample_accuracy_translated_centre", "two_sample_accuracy_untranslated_centre"):
        assert 0 <= r["realism"][key]["accuracy"] <= 1 and r["realism"][key]["n_test"] > 0
    assert r["diversity"]["mean_pairwise_l1"] > 0 and r["n_real_videos"] == 4
    assert "two-sample accuracy" in format_report(r)
    json.dumps(r)
    with pytest.raises(DatasetError, match=r"needs the output of 'sim2real translate'"):
        evaluate(world["render"], [world["real"]])


def test_cli_train_export_translate_evaluate(world, tmp_path, capsys):
    from sim2real.cli import main

    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[model]\ngen_dim = 8\nmlp_dim = 16\nn_res = 1\ndis_dim = 8\ndis_n_layer = 2\ndis_num_scales = 2\n"
                   "[data]\nload_size = 32\ncrop = [32, 40]\n[train]\nmax_iter = 2\nsample_every = 1\n")
    run = tmp_path / "run"
    main(["train", "--sim", str(world["render"]), "--real", str(world["real"]), "--out", str(run),
          "--config", str(cfg), "--threads", "1"])
    assert (run / "checkpoint.pt").is_file() and (run / "losses.jsonl").is_file()
    assert len(list((run / "samples").glob("step_*.png"))) == 2
    main(["train", "--sim", str(world["render"]), "--real", str(world["real"]), "--out", str(run),
          "--resume", "--max-iter", "3"])
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 3
    main(["export", str(run)])
    assert (run / "translator.pt").is_file()
    main(["translate", "--checkpoint", str(run), "--data", str(world["render"]), "--out", str(tmp_path / "t"),
          "-k", "2", "--batch", "3"])
    assert len(open_dataset(tmp_path / "t")) == 12
    main(["evaluate", "--data", str(tmp_path / "t"), "--real", str(world["real"]), "--epochs", "1"])
    out = capsys.readouterr().out
    assert "two-sample accuracy" in out and (tmp_path / "t" / "evaluation.json").is_file()
    with pytest.raises(SystemExit) as e:
        main(["translate", "--checkpoint", str(tmp_path / "nope.pt"), "--data", str(world["render"]),
              "--out", str(tmp_path / "t2")])
    assert e.value.code == 2
    assert "error: checkpoint" in capsys.readouterr().err


def test_translate_cli_module_does_not_import_torch():
    import subprocess

    code = "import sys, sim2real.translate.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_black_field_of_view_border_stays_black(world, tmp_path):
    import shutil

    from sim2real.dataset.format import open_dataset
    from sim2real.io import write_png

    render = tmp_path / "render"
    shutil.copytree(world["render"], render)
    src = open_dataset(render).sample("000000")
    img = src.image()
    img[src.segmentation() == 0] = 0  # the fake's background corner, black like a real render's border
    write_png(src.path("image"), img)
    translate_dataset(world["ckpt"], render, tmp_path / "f", k=2)
    translate_dataset(world["ckpt"], render, tmp_path / "n", k=2, keep_fov=False)
    outside = (src.image().max(axis=2) == 0) & (src.segmentation() == 0)
    assert outside.any()
    kept = open_dataset(tmp_path / "f").sample("000000_style_01").image()
    free = open_dataset(tmp_path / "n").sample("000000_style_01").image()
    assert (kept[outside] == 0).all() and (free[outside] != 0).any()
    assert np.array_equal(kept[~outside], free[~outside])


@pytest.fixture(scope="module")
def segmenter(world):
    """A segmenter 'trained on real frames' (2 steps: only the plumbing matters here)."""
    from sim2real.segment.data import load_items
    from sim2real.segment.train import TrainConfig, train

    real_root = world["real"].parent
    items = load_items([real_root], ["gallbladder", "tool"], real_map={"gallbladder": [5], "tool": [6]})
    out = world["root"] / "seg"
    train(items, out, TrainConfig(steps=2, size=(32, 16), batch=2, base=4, depth=2, log_every=1,
                                  checkpoint_every=2, warmup=1), device="cpu", progress=False)
    return out / "checkpoint.pt"


def test_min_consistency_scores_redraws_and_records(world, segmenter, tmp_path):
    from sim2real.segment.consistency import ConsistencyScorer

    scorer = ConsistencyScorer(segmenter, open_dataset(world["render"]).classes, device="cpu")
    s = translate_dataset(world["ckpt"], world["render"], tmp_path / "c", k=2, segmenter=segmenter,
                          scorer=scorer, min_consistency=1.0, max_redraws=1)
    recs = [json.loads((p / "meta.json").read_text())["translation"] for p in (tmp_path / "c/samples").iterdir()]
    assert len(recs) == 12
    for r in recs:
        assert set(r["consistency_dice"]) == {"gallbladder", "tool"}
        assert 0.0 <= r["consistency_mean"] <= 1.0
        assert r["passed_min_consistency"] == (r["consistency_mean"] >= 1.0)
        if not r["passed_min_consistency"]:
            assert r["redraws"] == 1
    assert s["below_min_consistency"] == sum(not r["passed_min_consistency"] for r in recs)
    assert s["redraws"] >= s["below_min_consistency"]
    with pytest.raises(Exception, match="needs --segmenter"):
        translate_dataset(world["ckpt"], world["render"], tmp_path / "x", k=1, min_consistency=0.5)


def test_evaluate_with_segmenter_reports_consistency(world, segmenter, tmp_path, capsys):
    from sim2real.cli import main

    translate_dataset(world["ckpt"], world["render"], tmp_path / "t", k=2)
    try:
        main(["evaluate", "--data", str(tmp_path / "t"), "--real", str(world["real"]), "--epochs", "1",
              "--segmenter", str(segmenter), "--out", str(tmp_path / "r.json"), "--device", "cpu"])
    except SystemExit as e:
        assert e.code in (0, None)
    rep = json.loads((tmp_path / "r.json").read_text())["consistency"]
    assert set(rep["translated"]) == {"gallbladder", "tool", "mean"}
    assert set(rep["untranslated"]) == {"gallbladder", "tool", "mean"}
    assert len(rep["per_variant"]) == 12
    assert "consistency: Dice, mean" in capsys.readouterr().out


def _tree(root):
    """{relative path: bytes} of every file of a data set folder."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_shards_equal_one_process_and_rerun_safely(world, tmp_path):
    one = translate_dataset(world["ckpt"], world["render"], tmp_path / "one", k=2, seed=5, batch=4, io_threads=0)
    parts = [translate_dataset(world["ckpt"], world["render"], tmp_path / "sharded", k=2, seed=5, batch=4,
                               shard=(i, 2)) for i in (1, 0)]
    # renders at positions 0, 2, 4 go to shard 0, 1, 3, 5 to shard 1: disjoint, together everything
    assert [p["variants_written"] for p in parts] == [6, 6] and one["variants_written"] == 12
    assert _tree(tmp_path / "one") == _tree(tmp_path / "sharded")
    again = translate_dataset(world["ckpt"], world["render"], tmp_path / "sharded", k=2, seed=5, batch=4,
                              shard=(1, 2))
    assert again["variants_written"] == 0 and again["variants_skipped"] == 6
    with pytest.raises(Exception, match=r"--shard 2/2: need 0 <= i < n"):
        translate_dataset(world["ckpt"], world["render"], tmp_path / "x", shard=(2, 2))


def test_inference_does_not_import_the_segmenter_package():
    import subprocess

    code = "import sys, sim2real.translate.inference; print(any(m.startswith('sim2real.segment') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
