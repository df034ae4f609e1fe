"""A training run's state as a ``weights_only``-loadable dict, and back (exact resume)."""

from __future__ import annotations

from ..io.videos import sort_videos
from .checkpoint import CheckpointError, load_state, rng_state, set_rng_state


def run_state(tr) -> dict:
    """Everything trainer ``tr`` needs to resume exactly."""
    return {
        "kind": "train",
        "config": tr.cfg.to_dict(),
        "step": tr.step,
        "real_videos": list(tr.real_videos),
        "model": {k: v.state_dict() for k, v in tr.nets().items() if not k.startswith("ema")},
        "ema": {"gen_sim": tr.ema_sim.state_dict(), "gen_real": tr.ema_real.state_dict()},
        "optim": {"gen": tr.opt_g.state_dict(), "dis": tr.opt_d.state_dict(),
                  "sched_gen": tr.sched_g.state_dict(), "sched_dis": tr.sched_d.state_dict(),
                  **({"seg": tr.opt_seg.state_dict()} if tr.opt_seg is not None else {})},
        "rng": rng_state(),
        "world_size": tr.world_size,
    }


def load_run_state(tr, ck: dict) -> None:
    """Put checkpoint ``ck`` (from ``load_checkpoint``) into trainer ``tr``; one-line
    :class:`CheckpointError` for weights or optimiser state that do not fit."""
    path = ck.get("path", "checkpoint")
    extra = [k for k in ("nce_heads", "semantic_seg") if k in tr.nets()]
    for k in ("gen_sim", "gen_real", "dis_sim", "dis_real", *extra):
        if k not in ck["model"]:
            raise CheckpointError(f"checkpoint {path} lacks the {k} weights; it was modified")
        load_state(tr.nets()[k], ck["model"][k], k, path)
    load_state(tr.ema_sim, ck["ema"]["gen_sim"], "ema_sim", path)
    load_state(tr.ema_real, ck["ema"]["gen_real"], "ema_real", path)
    try:
        tr.opt_g.load_state_dict(_fused(ck["optim"]["gen"]))
        tr.opt_d.load_state_dict(_fused(ck["optim"]["dis"]))
        tr.sched_g.load_state_dict(ck["optim"]["sched_gen"])
        tr.sched_d.load_state_dict(ck["optim"]["sched_dis"])
        if tr.opt_seg is not None:
            tr.opt_seg.load_state_dict(ck["optim"]["seg"])
    except (KeyError, ValueError, RuntimeError) as exc:
        from ..errors import one_line

        raise CheckpointError(f"checkpoint {path}: optimiser state does not fit ({one_line(exc)}); "
                              f"it was modified or mixes runs") from None
    tr.step = int(ck["step"])
    tr.real_videos = sort_videos(set(tr.real_videos) | set(ck.get("real_videos", [])))
    set_rng_state(ck.get("rng", {}))


def _fused(opt_state: dict) -> dict:
    """An optimiser state dict loaded as fused Adam (checkpoints of older versions were not fused)."""
    groups = [{**g, "fused": True, "foreach": None} for g in opt_state["param_groups"]]
    return {**opt_state, "param_groups": groups}
