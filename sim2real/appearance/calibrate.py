"""Calibrate a preset's colours and light to a hospital's real frames (``sim2real calibrate``).

Each round renders a few low-resolution samples (the same seed and indices every round,
so rounds differ only in what was adjusted), measures per class the mean and spread of
the CIELAB colour of its pixels and the share of clipped pixels inside the field of
view, and compares them with the real frames (:mod:`sim2real.appearance.stats`). Then:

- each mapped class's colour range (a tissue section's ``color``; for tools the
  instruments' ``shaft_color``/``tip_color``; for ``background``, the real masks'
  unlabelled pixels, every enabled tissue no other class names, all by the same factors so that
  fat stays paler than liver) is scaled per channel by the ratio of the real to the
  rendered mean linear colour (damped), and its width follows the ratio of the lightness
  spreads;
- the scope light's ``energy_w`` range is scaled down while highlights clip more than in
  the real frames (and up when the renders are much darker and clip less).

The round closest to the real frames is written as an ordinary preset (complete,
commented, validated) beside a before/after report (``<out>.report.md`` and ``.json``).
"""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .stats import BACKGROUND, ColourStats, background_tissues, compare, lab_to_linear, real_stats, render_stats
from ..defaults import TISSUES
from ..errors import Sim2RealError

TOOL_CLASSES = {"tool": ("shaft_color", "tip_color"), "tool_shaft": ("shaft_color",), "tool_tip": ("tip_color",)}
MAX_CLIPPED = 0.02  # the clipped share a calibrated preset must stay under


@dataclass
class CalibrateOptions:
    """What ``sim2real calibrate`` does; the CLI and tests build one."""

    real: str
    masks: str
    mapping: dict  # class name -> mask values, e.g. {"gallbladder": [5], "tool": [6]}
    out: str
    preset: str = "default"
    samples: int = 12
    rounds: int = 3
    size: tuple[int, int] = (160, 90)
    seed: int = 0
    real_limit: int = 150
    damping: float = 0.8  # exponent on the colour ratios (1 = jump straight to the estimate)

    def check(self) -> None:
        if not str(self.out).endswith(".toml"):
            raise Sim2RealError(f"--out {self.out}: the calibrated preset must be a .toml file, e.g. scenes/mine.toml")
        unknown = [c for c in self.mapping if c not in TISSUES and c not in TOOL_CLASSES and c != BACKGROUND]
        if unknown:
            raise Sim2RealError(f"--map {unknown[0]}: calibrate adjusts the classes "
                                f"{', '.join([*TISSUES, *TOOL_CLASSES, BACKGROUND])}; rename it to one of these")
        if BACKGROUND in self.mapping and not background_tissues(self.mapping):
            raise Sim2RealError(f"--map {BACKGROUND}: every tissue is mapped to a class of its own, so no tissue is "
                                f"left for the background; drop {BACKGROUND} or one of the tissues")
        if self.samples < 1 or self.rounds < 0:
            raise Sim2RealError("--samples must be >= 1 and --rounds >= 0")


def _mean_linear(stats: ColourStats, name: str) -> np.ndarray | None:
    m = stats.mean(name)
    return None if m is None else np.clip(lab_to_linear(m), 1e-4, None)


def _scale_color(rng_pair, ratio: np.ndarray, width: float) -> list:
    lo, hi = np.asarray(rng_pair[0], float), np.asarray(rng_pair[1], float)
    mid, half = (lo + hi) / 2 * ratio, (hi - lo) / 2 * width
    lo, hi = np.clip(mid - half, 0.0, 1.0), np.clip(mid + half, 0.0, 1.0)
    return [[round(float(x), 4) for x in lo], [round(float(x), 4) for x in np.maximum(hi, lo)]]


def adjust(cfg: dict, render: ColourStats, real: ColourStats, damping: float = 0.8) -> tuple[dict, list[str]]:
    """One calibration step: a new config and a line per change."""
    cfg = copy.deepcopy(cfg)
    notes = []
    for name in real.classes:
        r, t = _mean_linear(render, name), _mean_linear(real, name)
        if r is None or t is None:
            notes.append(f"{name}: not visible in the renders, colour left as is")
            continue
        ratio = np.clip((t / r) ** damping, 0.25, 4.0)
        sr, st = render.std(name), real.std(name)
        width = float(np.clip((st[0] / max(sr[0], 1e-3)) ** 0.5, 0.7, 1.4))
        if name == BACKGROUND:
            fields = [(t, "color") for t in background_tissues(real.classes) if cfg[t].get("enabled", True)]
        elif name in TISSUES:
            fields = [(name, "color")]
        else:
            fields = [("instruments", f) for f in TOOL_CLASSES[name]]
        for sec, key in fields:
            cfg[sec][key] = _scale_color(cfg[sec][key], ratio, width)
        notes.append(f"{name}: colour x ({', '.join(f'{x:.2f}' for x in ratio)}), range width x {width:.2f}")
    clip_r, clip_t = render.clipped_share, real.clipped_share
    target = min(max(clip_t, 0.002), MAX_CLIPPED / 2)
    factor = 1.0
    if clip_r > 1.5 * target:
        factor = float(np.clip((target / clip_r) ** 0.35, 0.5, 0.95))
    elif clip_r < target / 3:
        factor = 1.1
    if factor != 1.0:
        lo, hi = cfg["light"]["energy_w"]
        cfg["light"]["energy_w"] = [round(lo * factor, 5), round(hi * factor, 5)]
        notes.append(f"light: energy x {factor:.2f} (clipped {100 * clip_r:.2f} % vs real {100 * clip_t:.2f} %)")
    return cfg, notes


def score(cmp: dict) -> float:
    """Lower is closer: the summed ΔE of the classes, plus a penalty for clipping over 2 %."""
    de = sum(c["delta_e76"] if c["delta_e76"] is not None else 50.0 for c in cmp["classes"].values())
    return de + 1000.0 * max(0.0, cmp["clipped_share_render"] - MAX_CLIPPED)


def render_round(cfg: dict, opts: CalibrateOptions, folder: Path, renderer=None) -> ColourStats:
    """Render ``opts.samples`` low-resolution samples of ``cfg`` into ``folder``; their statistics."""
    from ..config import to_toml
    from ..io import write_bytes_atomic
    from ..rendering.job import RenderJob, render_indices

    folder.mkdir(parents=True, exist_ok=True)
    preset = folder / "preset.toml"
    write_bytes_atomic(preset, to_toml(cfg).encode())
    job = RenderJob(str(preset), str(folder / "renders"), opts.samples, seed=opts.seed,
                    overrides={"render.resolution": list(opts.size)})
    render_indices(job, job.indices(), renderer=renderer)
    return render_stats(folder / "renders", list(opts.mapping))


def calibrate(opts: CalibrateOptions, log=None, workdir: str | None = None) -> dict:
    """Run the rounds, write the best preset and the report; returns the report."""
    from ..config import load_config, to_toml
    from ..io import write_bytes_atomic, write_json_atomic

    opts.check()
    say = log or (lambda s: None)
    cfg = load_config(opts.preset)
    cfg.pop("preset_path", None)
    real = real_stats(opts.real, opts.masks, opts.mapping, limit=opts.real_limit)
    empty = [c for c in real.classes if not real.n.get(c)]
    if empty:
        raise Sim2RealError(f"--map {empty[0]}={opts.mapping[empty[0]]}: no pixel of the real masks has that value; "
                            f"check the mask values (e.g. gallbladder=5,tool=6)")
    say(f"real: {real.images} frames, clipped {100 * real.clipped_share:.2f} %")
    rounds = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for k in range(opts.rounds + 1):
            stats = render_round(cfg, opts, Path(tmp) / f"round{k}")
            cmp = compare(stats, real)
            rounds.append({"round": k, "config": cfg, "render": stats.to_json(), "compare": cmp, "score": score(cmp)})
            say(f"round {k}: " + ", ".join(f"{c} ΔE {v['delta_e76']}" for c, v in cmp["classes"].items())
                + f", clipped {100 * cmp['clipped_share_render']:.2f} %")
            if k < opts.rounds:
                cfg, notes = adjust(cfg, stats, real, opts.damping)
                rounds[-1]["changes"] = notes
                for n in notes:
                    say("  " + n)
    best = min(rounds, key=lambda r: r["score"])
    out = Path(opts.out)
    final = copy.deepcopy(best["config"])
    final["scene"]["name"] = out.stem
    header = (f"# Calibrated by `sim2real calibrate` from preset {opts.preset!r} against {real.images} frames of "
              f"{opts.real}\n# (round {best['round']} of {opts.rounds}; see {out.name[:-5]}.report.md). "
              f"An ordinary preset: edit freely.\n\n")
    write_bytes_atomic(out, (header + to_toml(final)).encode())
    load_config(out)  # what calibrate writes must load like any preset
    report = {
        "preset": opts.preset, "out": str(out), "real": {"images": opts.real, "masks": opts.masks,
                                                         "map": opts.mapping, **real.to_json()},
        "settings": {"samples": opts.samples, "rounds": opts.rounds, "size": list(opts.size), "seed": opts.seed},
        "before": rounds[0]["compare"], "after": best["compare"], "best_round": best["round"],
        "rounds": [{k: v for k, v in r.items() if k != "config"} for r in rounds],
    }
    stem = out.with_suffix("")
    write_json_atomic(Path(f"{stem}.report.json"), report)
    write_bytes_atomic(Path(f"{stem}.report.md"), report_markdown(report).encode())
    return report


def report_markdown(rep: dict) -> str:
    lines = [f"# Calibration of `{rep['preset']}` -> `{rep['out']}`", "",
             f"Real: {rep['real']['images']} frames; renders: {rep['settings']['samples']} samples at "
             f"{rep['settings']['size'][0]}x{rep['settings']['size'][1]} per round, {rep['settings']['rounds']} rounds, "
             f"kept round {rep['best_round']}.", "",
             "| class | ΔE76 before | ΔE76 after | real L,a,b | render L,a,b after |", "|---|---|---|---|---|"]
    last = next(r for r in rep["rounds"] if r["round"] == rep["best_round"])
    for c, v in rep["after"]["classes"].items():
        lines.append(f"| {c} | {rep['before']['classes'][c]['delta_e76']} | {v['delta_e76']} | "
                     f"{rep['real']['classes'][c]['lab_mean']} | {last['render']['classes'][c]['lab_mean']} |")
    lines += ["", f"Clipped pixels inside the field of view: {100 * rep['before']['clipped_share_render']:.2f} % before, "
              f"{100 * rep['after']['clipped_share_render']:.2f} % after, real "
              f"{100 * rep['after']['clipped_share_real']:.2f} %.", "", "Changes per round:", ""]
    for r in rep["rounds"]:
        for n in r.get("changes", []):
            lines.append(f"- round {r['round']}: {n}")
    return "\n".join(lines) + "\n" + "\n<!-- " + json.dumps(rep["settings"]) + " -->\n"
