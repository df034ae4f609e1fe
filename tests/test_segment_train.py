"""Training on tiny images: runs, resumes exactly, fine-tunes, and rejects bad checkpoints."""

import pickle

import pytest
import torch

from sim2real.errors import Sim2RealError
from sim2real.segment.checkpoint import CheckpointError, load_checkpoint
from sim2real.segment.data import load_items
from sim2real.segment.train import TrainConfig, train

TINY = dict(size=(32, 16), batch=2, base=4, depth=2, log_every=1, checkpoint_every=2, warmup=1)


@pytest.fixture
def render_items(fake_render_dataset):
    return load_items([fake_render_dataset], ["gallbladder", "tool"])


@pytest.fixture
def real_items(fake_real_folder):
    return load_items([fake_real_folder], ["gallbladder", "tool"], real_map={"gallbladder": [5], "tool": [6]})


def test_two_step_training_writes_a_weights_only_checkpoint(render_items, tmp_path):
    cfg = TrainConfig(steps=2, **TINY)
    summary = train(render_items, tmp_path / "run", cfg, device="cpu", progress=False)
    assert summary["step"] == 2 and summary["done"]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in summary["history"])
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["format"] == "sim2real-segmenter" and state["step"] == 2
    assert state["classes"] == ["gallbladder", "tool"]
    assert (tmp_path / "run" / "train.json").is_file()


def test_resume_equals_training_straight(render_items, tmp_path):
    cfg = TrainConfig(steps=4, **TINY)
    torch.manual_seed(0)
    train(render_items, tmp_path / "straight", cfg, device="cpu", progress=False)
    torch.manual_seed(0)
    train(render_items, tmp_path / "split", cfg, device="cpu", progress=False, stop_after=2)
    assert load_checkpoint(tmp_path / "split")["step"] == 2
    torch.manual_seed(123)  # resume must not depend on the global RNG
    train(render_items, tmp_path / "split", cfg, resume=True, device="cpu", progress=False)
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "split")
    assert b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]])


def test_the_seed_alone_decides_the_run(render_items, tmp_path):
    """Same seed -> the same weights whatever the process's RNG did before; another seed -> others."""
    cfg = TrainConfig(steps=2, **TINY)
    torch.manual_seed(1)
    train(render_items, tmp_path / "a", cfg, device="cpu", progress=False)
    torch.rand(1000)  # the global RNG moves on (an earlier arm, another library)
    train(render_items, tmp_path / "b", cfg, device="cpu", progress=False)
    train(render_items, tmp_path / "c", TrainConfig(steps=2, seed=1, **TINY), device="cpu", progress=False)
    a, b, c = (load_checkpoint(tmp_path / x)["model"] for x in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_existing_run_needs_resume_and_same_settings(render_items, real_items, tmp_path):
    cfg = TrainConfig(steps=2, **TINY)
    train(render_items, tmp_path / "run", cfg, device="cpu", progress=False)
    with pytest.raises(Sim2RealError, match="--resume"):
        train(render_items, tmp_path / "run", cfg, device="cpu", progress=False)
    with pytest.raises(Sim2RealError, match="cannot change lr"):
        train(render_items, tmp_path / "run", cfg, resume=True, overrides={"lr": 0.1}, device="cpu", progress=False)
    with pytest.raises(Sim2RealError, match="--data differs"):
        train(real_items, tmp_path / "run", cfg, resume=True, device="cpu", progress=False)
    # more steps is a legal change
    s = train(render_items, tmp_path / "run", cfg, resume=True, overrides={"steps": 3}, device="cpu", progress=False)
    assert s["step"] == 3


def test_fine_tuning_starts_from_the_checkpoint(render_items, real_items, tmp_path):
    cfg = TrainConfig(steps=2, **TINY)
    train(render_items, tmp_path / "pre", cfg, device="cpu", progress=False)
    train(real_items, tmp_path / "ft", TrainConfig(steps=1, lr=1e-9, **{**TINY, "warmup": 1}),
          init=tmp_path / "pre" / "checkpoint.pt", device="cpu", progress=False)
    pre, ft = load_checkpoint(tmp_path / "pre"), load_checkpoint(tmp_path / "ft")
    assert ft["init_from"].endswith("checkpoint.pt") and ft["step"] == 1
    w = "head.weight"
    assert torch.allclose(pre["model"][w], ft["model"][w], atol=1e-6)  # lr ~0: weights barely move
    with pytest.raises(Sim2RealError, match="same --classes"):
        train(real_items, tmp_path / "ft2", TrainConfig(classes=("tool",), steps=1, **TINY),
              init=tmp_path / "pre" / "checkpoint.pt", device="cpu", progress=False)


def test_bad_checkpoints_get_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="damaged or not a PyTorch file"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"format": "sim2real-translator", "step": 1}, other)
    with pytest.raises(CheckpointError, match="not a sim2real segmenter checkpoint"):
        load_checkpoint(other)
    unsafe = tmp_path / "unsafe.pt"
    with open(unsafe, "wb") as f:  # a pickled object weights_only refuses to run
        pickle.dump({"format": "sim2real-segmenter", "x": pickle.Pickler}, f, protocol=2)
    with pytest.raises(CheckpointError, match="cannot be loaded safely"):
        load_checkpoint(unsafe)


def test_tampered_checkpoint_is_rejected(render_items, tmp_path):
    train(render_items, tmp_path / "run", TrainConfig(steps=1, **TINY), device="cpu", progress=False)
    path = tmp_path / "run" / "checkpoint.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="damaged or not a PyTorch file"):
        load_checkpoint(path)


def test_bad_config_values_are_clear_errors():
    with pytest.raises(Sim2RealError, match="multiples of 16"):
        TrainConfig(size=(100, 96))
    with pytest.raises(Sim2RealError, match="steps must be >= 1"):
        TrainConfig(steps=0)
