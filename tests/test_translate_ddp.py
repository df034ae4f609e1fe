"""Training one translator across processes (torchrun / gloo on the CPU): same trajectory as one
process with the whole batch, rank 0 alone writes, exact resume."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from sim2real.translate.checkpoint import load_checkpoint
from sim2real.translate.config import load_config
from sim2real.translate.data import RealFrames, SimImages
from sim2real.translate.trainer import Trainer

TINY = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
        "data": {"load_size": 32, "crop": [32, 48]},
        "train": {"log_every": 1, "sample_every": 2, "checkpoint_every": 100, "sample_k": 2, "sample_rows": 2}}
STEPS = 3
LR = 1e-4
# 2 ranks x batch 1 average their gradients in another order than one process x batch 2
# (float rounding, ~1e-7 relative). Adam's first steps move a weight by about lr whatever
# the gradient's size, so a weight whose gradient is pure rounding noise (e.g. a conv bias
# right before instance norm: exactly 0 in exact arithmetic) moves by +-lr with a random
# sign in either run. Tolerance: 99 % of the weights agree within ATOL, and every weight
# within that noise bound 2 * lr * steps.
ATOL = 1e-6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, render, real, run_dirs, result):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        cfg = load_config(None, {**TINY, "train": {**TINY["train"], "batch_size": 1}})
        tr = Trainer(cfg, SimImages(render), RealFrames([real], cfg.data), run_dirs[rank], "cpu")
        tr.fit(STEPS)
        if rank == 0:
            torch.save(_weights(tr), result)
    finally:
        dist.destroy_process_group()


def _weights(tr) -> dict:
    st = tr.state()
    return {f"{g}.{n}.{k}": v for g in ("model", "ema") for n, sd in st[g].items() for k, v in sd.items()}


def test_two_ranks_batch_1_follow_one_process_batch_2(fake_render_dataset, fake_real_folder, tmp_path):
    import torch.multiprocessing as mp

    real = fake_real_folder / "images"
    run_dirs = [tmp_path / "run", tmp_path / "rank1_would_write_here"]
    mp.start_processes(_worker, args=(2, _free_port(), fake_render_dataset, real, run_dirs, tmp_path / "w.pt"),
                       nprocs=2, start_method="spawn")
    ddp = torch.load(tmp_path / "w.pt", weights_only=True)

    cfg = load_config(None, {**TINY, "train": {**TINY["train"], "batch_size": 2}})
    one = Trainer(cfg, SimImages(fake_render_dataset), RealFrames([real], cfg.data), tmp_path / "one", "cpu")
    one.fit(STEPS)
    ref = _weights(one)
    assert ddp.keys() == ref.keys()
    diff = torch.cat([(ddp[k] - ref[k]).abs().flatten() for k in ref])
    close = float((diff < ATOL).float().mean())
    assert close > 0.99 and float(diff.max()) <= 2 * LR * STEPS * 1.01, (close, float(diff.max()))
    # and the runs really moved (the comparison is not between two initialisations)
    init = Trainer(cfg, SimImages(fake_render_dataset), RealFrames([real], cfg.data), None, "cpu")
    moved = torch.cat([(v - _weights(init)[k]).abs().flatten() for k, v in ref.items()])
    assert float((moved > 100 * ATOL).float().mean()) > 0.5

    assert not run_dirs[1].exists()  # rank 1 wrote nothing
    assert json.loads((run_dirs[0] / "config.json").read_text())["world_size"] == 2
    # the logged losses are the means over both ranks: they equal the one-process log
    a = [json.loads(x) for x in (run_dirs[0] / "losses.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "one" / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in a] == [1, 2, 3]
    for ra, rb in zip(a, b):
        assert ra["g"] == pytest.approx(rb["g"], rel=1e-4) and ra["d"] == pytest.approx(rb["d"], rel=1e-4)


def _torchrun(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
           str(_free_port()), "-m", "sim2real.cli", "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


@pytest.mark.slow  # two torchrun jobs of two processes each (~40-60 s on 2 shared cores)
def test_torchrun_cli_trains_resumes_and_records_world_size(fake_render_dataset, fake_real_folder, tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text("[model]\ngen_dim = 8\nmlp_dim = 16\nn_res = 1\ndis_dim = 8\ndis_n_layer = 2\ndis_num_scales = 2\n"
                   "[data]\nload_size = 32\ncrop = [32, 48]\n"
                   "[train]\nmax_iter = 2\nsample_every = 1\nlog_every = 1\nsample_rows = 2\nsample_k = 2\n")
    run = tmp_path / "run"
    base = ["--sim", str(fake_render_dataset), "--real", str(fake_real_folder / "images"), "--out", str(run),
            "--device", "cpu"]
    r = _torchrun([*base, "--config", str(cfg)], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    assert load_checkpoint(run / "checkpoint.pt")["world_size"] == 2
    assert r.stderr.count("done: step 2") == 1  # rank 0 alone reports
    r = _torchrun([*base, "--resume", "--max-iter", "4"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 4
    steps = [json.loads(x)["step"] for x in (run / "losses.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # one writer: no line twice
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"step_000000{i}.png" for i in (1, 2, 3, 4)]
    # a single process may not continue a 2-process run (the trajectory would change)
    one = subprocess.run([sys.executable, "-m", "sim2real.cli", "train", *base, "--resume", "--max-iter", "5"],
                         capture_output=True, text=True)
    assert one.returncode == 2 and "trained by 2 process(es)" in one.stderr
