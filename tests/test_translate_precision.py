"""Mixed precision: the code a GPU runs (bf16 autocast, every loss term of every shipped
preset) runs on the CPU too — train, resume exactly, export, translate."""

import json

import numpy as np
import pytest
import torch

from sim2real.dataset.format import open_dataset
from sim2real.errors import ConfigError
from sim2real.translate.checkpoint import load_checkpoint
from sim2real.translate.config import load_config, preset_names
from sim2real.translate.data import RealFrames, SimImages
from sim2real.translate.trainer import Trainer

torch.set_num_threads(1)

# Small networks, crops and batches (bf16 is slow on a CPU without bf16 instructions);
# every loss term, its weight and the precision stay the preset's. The semantic term's
# warm-up is shortened to 1 step so that a 3-step run applies it.
TINY_NETS = {"model.gen_dim": 8, "model.mlp_dim": 16, "model.n_res": 1, "model.dis_dim": 8,
             "model.dis_n_layer": 2, "model.dis_num_scales": 2, "data.crop": [16, 32], "loss.semantic_warmup": 1,
             "loss.nce_patches": 16, "train.batch_size": 1, "train.workers": 1,
             "train.log_every": 1, "train.sample_every": 2, "train.checkpoint_every": 100, "train.sample_k": 2,
             "train.sample_rows": 2}


def _nested(flat: dict) -> dict:
    out: dict = {}
    for key, v in flat.items():
        sec, _, field = key.partition(".")
        out.setdefault(sec, {})[field] = v
    return out


def _sets(flat: dict) -> list[str]:
    return [a for k, v in flat.items() for a in ("--set", f"{k}={json.dumps(v)}")]


def test_bf16_on_the_cpu_runs_the_networks_in_bf16_and_the_losses_in_fp32(fake_render_dataset, fake_real_folder,
                                                                          tmp_path):
    """The GPU's default (bf16 autocast) with the small preset's PatchNCE and semantic terms:
    it used to die on step 1 ("Input type (c10::BFloat16) and bias type (float) should be
    the same": the PatchNCE encoder pass and the semantic judge got bf16 translations
    outside autocast)."""
    cfg = load_config("small", _nested({**TINY_NETS, "train.precision": "bf16"}))
    assert cfg.loss.nce > 0 and cfg.loss.semantic > 0
    tr = Trainer(cfg, SimImages(fake_render_dataset), RealFrames([fake_real_folder / "images"], cfg.data),
                 tmp_path / "run", "cpu")
    seen = []
    for m in tr.gen_real.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    for _ in range(3):
        losses = tr.train_step()
    assert tr.precision == "bf16" and torch.bfloat16 in seen
    assert {"nce", "semantic", "semantic_seg"} <= set(losses)
    for k, v in losses.items():
        assert v.dtype == torch.float32 and torch.isfinite(v), k
    assert float(losses["skipped"]) == 0
    assert all(p.dtype == torch.float32 for p in tr.gen_real.parameters())


def test_auto_is_fp32_on_the_cpu_and_fp16_is_refused():
    tr = Trainer(load_config("small", _nested(TINY_NETS)), None, None, None, "cpu")
    assert tr.precision == "fp32"
    with pytest.raises(ConfigError, match=r"train.precision fp16 is not offered.*use bf16"):
        load_config("small", {"train": {"precision": "fp16"}})


# the bilateral-grid family, on whole tiny frames (24x32; low-resolution path 16 px, 8x8 grid)
BILATERAL = {"model.family": "bilateral", "model.bil_dim": 8, "model.bil_low": 16, "model.bil_grid": 8,
             "model.bil_bins": 4, "data.load_size": 24, "data.crop": [0, 0]}


@pytest.mark.parametrize("preset,family", [(p, load_config(p).model.family) for p in preset_names()])
def test_every_preset_trains_resumes_exports_and_translates_in_bf16_on_the_cpu(preset, family, fake_render_dataset,
                                                                               fake_real_folder, tmp_path, capsys):
    from sim2real.cli import main

    sets = {**TINY_NETS, **(BILATERAL if family == "bilateral" else {})}
    cfg = load_config(preset, _nested(sets))
    assert cfg.model.family == family
    terms = {k for k in ("nce", "semantic") if getattr(cfg.loss, k) > 0}
    common = ["--sim", str(fake_render_dataset), "--real", str(fake_real_folder / "images"), "--device", "cpu",
              "--precision", "bf16", "--threads", "1"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    main(["train", *common, "--out", str(straight), "--config", preset, *_sets(sets), "--max-iter", "3"])
    assert "device cpu, precision bf16" in capsys.readouterr().err
    main(["train", *common, "--out", str(split), "--config", preset, *_sets(sets), "--max-iter", "2"])
    main(["train", *common, "--out", str(split), "--resume", "--max-iter", "3"])
    a = load_checkpoint(straight / "checkpoint.pt", kinds=("train",))
    b = load_checkpoint(split / "checkpoint.pt", kinds=("train",))
    assert a["step"] == b["step"] == 3 and a["config"]["train"]["precision"] == "bf16"
    for group in ("model", "ema"):
        for net, sd in a[group].items():
            for k, v in sd.items():
                assert torch.equal(v, b[group][net][k]), f"{group}.{net}.{k}"
    log = [json.loads(line) for line in (split / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    for rec in log:
        assert terms <= set(rec) and all(np.isfinite(v) for v in rec.values()), rec

    main(["export", str(straight)])
    out = tmp_path / "translated"
    main(["translate", "--checkpoint", str(straight / "translator.pt"), "--data", str(fake_render_dataset),
          "--out", str(out), "-k", "2", "--device", "cpu", "--precision", "bf16", "--threads", "1"])
    ds = open_dataset(out)
    assert len(ds) == 2 * len(open_dataset(fake_render_dataset))
    img = ds.sample(ds.ids()[0]).image()
    assert img.dtype == np.uint8 and img.std() > 0
