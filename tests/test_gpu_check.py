"""benchmarks/gpu_check.py: its smoke mode trains the shipped GPU preset's loss terms under
bf16 autocast through the real training loop, translates with the checkpoint it trained,
and writes the table; without CUDA the real check says so and exits 0."""

import importlib.util
import json
from pathlib import Path

import torch

from sim2real.translate.config import load_config

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_mode_trains_the_gpu_presets_terms_in_bf16_and_writes_the_table(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert _load().main(["--smoke", "--out", str(out), "--renders", "2"]) == 0
    rep = json.loads(out.read_text())
    gpu = load_config("gpu")
    enabled = {k for k in ("nce", "semantic") if getattr(gpu.loss, k) > 0}
    assert enabled == {"nce", "semantic"}  # the shipped GPU preset: both label-aware terms
    tr = rep["train"]
    assert rep["smoke"] and rep["device"] == "cpu" and rep["preset"] == "gpu"
    assert tr["precision"] == "bf16" and enabled <= set(tr["loss_terms"]) and "semantic_seg" in tr["loss_terms"]
    assert tr["losses_finite"] and tr["skipped_steps"] == 0 and rep["all_losses_finite"]
    assert abs(tr["images_per_s"] - tr["it_per_s"] * tr["batch_size"]) < 1e-9 * tr["images_per_s"] and tr["steps"] >= 2
    assert Path(tr["checkpoint"]).name == "checkpoint.pt"
    rows = {r["what"]: r for r in rep["rows"]}
    rates = [r for r in rep["rows"] if isinstance(r["value"], float) and r["unit"] == "variants/s"]
    assert len(rates) == 4 and all(r["value"] > 0 for r in rates)  # 2 x model alone, 2 x whole job
    assert rows["Cycles on the GPU"]["value"] == "skipped" and rows["train --compile"]["value"] == "skipped"
    assert "variants/s" in capsys.readouterr().out


def test_without_cuda_it_says_so_and_exits_cleanly(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    assert _load().main(["--out", str(tmp_path / "x.json")]) == 0
    assert "no CUDA device" in capsys.readouterr().out and not (tmp_path / "x.json").exists()
