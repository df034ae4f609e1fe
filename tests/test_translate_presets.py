"""Presets fit the data: the crop is checked against the renders (and the networks' grid)
before any work, ``[0, 0]`` adapts to them, and the GPU presets scale the learning rate
with the global batch as their comments say."""

import math

import pytest

from sim2real.errors import ConfigError
from sim2real.translate.config import fit_crop, load_config, preset_names


def test_paper_adapts_its_crop_to_the_renders():
    paper = load_config("paper")
    assert paper.data.crop == [0, 0] and paper.data.load_size == 0
    assert fit_crop(paper, (256, 452)) == [256, 452]   # the default renders: the paper's crop
    assert fit_crop(paper, (144, 256)) == [144, 256]   # small renders: no black padding
    assert fit_crop(paper, (150, 258)) == [148, 256]   # multiples of 2**n_downsample = 4, inside
    scaled = load_config("paper", {"data": {"load_size": 128}})
    assert fit_crop(scaled, (256, 452)) == [128, 224]  # 452 * 128 / 256 = 226 -> 224


def test_a_crop_larger_than_the_renders_is_refused_with_the_fix():
    cfg = load_config(None, {"data": {"load_size": 0, "crop": [256, 452]}})
    with pytest.raises(ConfigError) as e:
        fit_crop(cfg, (144, 256))
    msg = str(e.value)
    # 144 * 256 of 256 * 452 pixels are image: 68 % padding
    assert "data.crop [256, 452]" in msg and "68%" in msg and "at most [144, 256]" in msg and "\n" not in msg
    small_nets = load_config("paper", {"data": {"crop": [32, 48]}})
    with pytest.raises(ConfigError, match=r"data.crop \[32, 48\]: the networks need at least 64 px"):
        fit_crop(small_nets, (256, 452))  # 3 discriminator scales x 4 halvings: 2**6


def test_train_refuses_an_oversized_crop_before_any_work(fake_render_dataset, fake_real_folder, tmp_path, capsys):
    from sim2real.cli import main

    run = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["train", "--sim", str(fake_render_dataset), "--real", str(fake_real_folder / "images"),
              "--out", str(run), "--config", "small", "--device", "cpu"])  # 64x112 crops, 48x64 renders
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "data.crop [64, 112]" in err[0] and "at most [48, 64]" in err[0]
    assert not run.exists()


@pytest.mark.parametrize("preset, gpus", [("gpu", 1), ("gpu8", 8)])
def test_gpu_presets_scale_the_learning_rate_with_the_global_batch(preset, gpus):
    cfg, paper = load_config(preset), load_config("paper")
    g = gpus * cfg.train.batch_size
    assert cfg.optim.lr == pytest.approx(paper.optim.lr * math.sqrt(g), rel=0.01)
    assert cfg.train.max_iter * g == paper.train.max_iter * paper.train.batch_size  # the paper's images
    assert cfg.optim.lr_step * 10 == cfg.train.max_iter
    assert (cfg.loss.nce, cfg.loss.semantic, cfg.model.gen_dim) == (paper.loss.nce, paper.loss.semantic, 64)
    assert {"small", "paper", "gpu", "gpu8"} <= set(preset_names())


def test_train_without_a_config_trains_the_bilateral_preset(fake_render_dataset, fake_real_folder, tmp_path):
    """The default is the family that measures best, with the bilateral preset's label-aware terms."""
    import json

    from sim2real.cli import main

    run = tmp_path / "run"
    main(["train", "--sim", str(fake_render_dataset), "--real", str(fake_real_folder / "images"), "--out", str(run),
          "--max-iter", "1", "--threads", "1", "--workers", "0", "--set", "train.sample_every=1000"])
    stored = json.loads((run / "config.json").read_text())
    want = load_config("bilateral").to_dict()
    assert stored["model"] == want["model"] and stored["loss"] == want["loss"]
    assert stored["model"]["family"] == "bilateral" and stored["loss"]["chroma"] > 0
