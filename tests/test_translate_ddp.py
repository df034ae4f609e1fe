"""Training one translator across processes (torchrun / gloo on the CPU): same trajectory as one
process with the whole batch, rank 0 alone writes, exact resume."""

import json

import pytest
import torch

from sim2real.translate.config import load_config
from sim2real.translate.data import RealFrames, SimImages
from sim2real.translate.distributed import leave
from sim2real.translate.trainer import Trainer

TINY = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
        "data": {"load_size": 32, "crop": [32, 40]},
        "train": {"log_every": 1, "sample_every": 2, "checkpoint_every": 100, "sample_k": 2, "sample_rows": 2,
                  "workers": 0}}
STEPS = 3
LR = 1e-4
# 2 ranks x batch 1 and one process x batch 2 compute the same sums in another order
# (float rounding, ~1e-6 relative). That is not all that differs after a few steps: an L1
# loss's gradient is the sign of (output - target), which rounding flips where the two
# agree to ~1e-7 (saturated pixels of the cycle reconstruction: 0.4 % of that term's
# gradient on this tiny net), and Adam's first updates move a weight by about lr whatever
# its gradient's size, so a weight whose gradient is rounding noise (a conv bias right
# before instance norm: exactly 0 in exact arithmetic) moves by +-lr either way.
# Tolerance: the logged losses of each step agree within LOSS_REL (measured: 2e-5), 99 %
# of the weights within one Adam step (lr; measured: 99.8 %), and every weight within that
# noise bound, 2 * lr * steps.
LOSS_REL = 1e-4


def _worker(rank, world, port, render, real, run_dirs, result):
    import torch.distributed as dist

    torch.set_num_threads(1)  # the same summation order in every process, whatever the parent set
    # the store is served by the test process, which bound its port and holds it: no port to
    # pick, release and race for
    store = dist.TCPStore("127.0.0.1", port, world, is_master=False)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    finished = False
    try:
        cfg = load_config(None, {**TINY, "train": {**TINY["train"], "batch_size": 1}})
        tr = Trainer(cfg, SimImages(render), RealFrames([real], cfg.data), run_dirs[rank], "cpu")
        tr.fit(STEPS)
        if rank == 0:
            torch.save(_weights(tr), result)
        finished = True
    finally:
        leave(world, finished)  # the way `sim2real translate train` leaves


def _weights(tr) -> dict:
    st = tr.state()
    return {f"{g}.{n}.{k}": v for g in ("model", "ema") for n, sd in st[g].items() for k, v in sd.items()}


@pytest.fixture
def one_thread():
    """The reference run in this process uses 1 thread like the ranks (other test modules set other counts)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_two_ranks_batch_1_follow_one_process_batch_2(fake_render_dataset, fake_real_folder, tmp_path, one_thread):
    import torch.multiprocessing as mp

    real = fake_real_folder / "images"
    run_dirs = [tmp_path / "run", tmp_path / "rank1_would_write_here"]
    import torch.distributed as dist

    store = dist.TCPStore("127.0.0.1", 0, 2, is_master=True, wait_for_workers=False)  # port 0: the OS picks
    mp.start_processes(_worker, args=(2, store.port, fake_render_dataset, real, run_dirs, tmp_path / "w.pt"),
                       nprocs=2, start_method="spawn")
    del store
    ddp = torch.load(tmp_path / "w.pt", weights_only=True)

    cfg = load_config(None, {**TINY, "train": {**TINY["train"], "batch_size": 2}})
    one = Trainer(cfg, SimImages(fake_render_dataset), RealFrames([real], cfg.data), tmp_path / "one", "cpu")
    one.fit(STEPS)
    ref = _weights(one)
    assert ddp.keys() == ref.keys()
    # the logged losses are the means over both ranks: they equal the one-process log
    a = [json.loads(x) for x in (run_dirs[0] / "losses.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "one" / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in a] == [1, 2, 3]
    for ra, rb in zip(a, b):
        for key in ("g", "d", "gan", "cycle", "struct_s2r"):
            assert ra[key] == pytest.approx(rb[key], rel=LOSS_REL), (ra["step"], key)
    init = _weights(Trainer(cfg, SimImages(fake_render_dataset), RealFrames([real], cfg.data), None, "cpu"))
    moved = torch.cat([(ref[k] - init[k]).flatten() for k in ref]).abs()
    diff = torch.cat([(ddp[k] - ref[k]).flatten() for k in ref]).abs()
    assert float((moved > LR).float().mean()) > 0.5  # the runs really moved
    assert float((diff < LR).float().mean()) > 0.99 and float(diff.max()) <= 2 * LR * STEPS * 1.01

    assert not run_dirs[1].exists()  # rank 1 wrote nothing
    assert json.loads((run_dirs[0] / "config.json").read_text())["world_size"] == 2
