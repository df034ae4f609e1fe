"""The downstream proof (issue 5 section 3), end to end, at a size a CPU can do.

Segmenters for the chosen classes (gallbladder, tool) are trained on
(a) untranslated renders, (b) translated renders, (c) real labelled frames of a few
videos, (d) (b)'s model fine-tuned on (c)'s frames, and all are scored on the held-out
videos of the real folder (split by video, never by frame). Each arm lives in
``OUT/<arm>/seed<k>/`` (checkpoint, train.json, eval.json/txt, overlays/); finished arms
are reused, so arms can be run as their data appear. ``OUT/report.json`` and
``OUT/report.md`` always describe every arm found on disk.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import Sim2RealError
from .data import DEFAULT_CLASSES, load_items, parse_mapping, sim_items, split_videos
from .train import TrainConfig

ARMS = {
    "a": "untranslated renders (0 real labels)",
    "e": "colour-transferred renders (0 real labels)",
    "b": "translated renders (0 real labels)",
    "c": "real labelled frames of the training videos",
    "d": "(b) pre-training, fine-tuned on (c)'s frames",
}


@dataclass(frozen=True)
class ExperimentConfig:
    real: str
    real_map: str = "gallbladder=5,tool=6"
    render: str | None = None
    translated: str | None = None
    colour: str | None = None
    classes: tuple[str, ...] = DEFAULT_CLASSES
    train_videos: int = 4
    split_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    size: tuple[int, int] = (160, 96)
    steps: int = 600
    finetune_steps: int = 600
    batch: int = 8
    base: int = 16


def _train_cfg(cfg: ExperimentConfig, seed: int, steps: int) -> TrainConfig:
    return TrainConfig(classes=tuple(cfg.classes), size=tuple(cfg.size), steps=steps, batch=cfg.batch,
                       base=cfg.base, seed=seed)


def run_experiment(cfg: ExperimentConfig, out, arms=("a", "b", "c", "d"), device: str = "auto",
                   log=lambda msg: None, progress: bool = True, realism: bool = True) -> dict:
    """Run the requested ``arms`` (skipping those without data), then write the report."""
    import torch

    from ..io import write_json_atomic
    from .evaluate import evaluate, write_overlays, write_report
    from .predict import Segmenter
    from .train import CHECKPOINT_NAME, train

    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        raise Sim2RealError(f"--arms: unknown arm(s) {', '.join(unknown)}; choose from {','.join(ARMS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(cfg.classes)
    real = load_items([cfg.real], classes, real_map=parse_mapping(cfg.real_map, "--real-map", True))
    train_v, test_v = split_videos([it.video for it in real], cfg.train_videos, cfg.split_seed)
    real_train = [it for it in real if it.video in set(train_v)]
    real_test = [it for it in real if it.video in set(test_v)]
    split = {"train_videos": train_v, "test_videos": test_v, "n_train_images": len(real_train),
             "n_test_images": len(real_test), "split_seed": cfg.split_seed}
    _check_same(out / "split.json", split, "video split (--train-videos/--split-seed/--real)")
    write_json_atomic(out / "split.json", split)
    # data sets may be added as they appear (each run records its own sources)
    _check_same(out / "experiment.json", _settings(cfg), "settings", skip=("render", "translated", "colour"))
    write_json_atomic(out / "experiment.json", _settings(cfg))

    data_for = {"a": cfg.render, "b": cfg.translated, "e": cfg.colour}
    flag = {"a": "--render", "b": "--translated", "e": "--colour"}
    for arm in [a for a in ARMS if a in arms]:
        for seed in cfg.seeds:
            run_dir = out / arm / f"seed{seed}"
            if (run_dir / "eval.json").is_file() and (run_dir / "train.json").is_file():
                log(f"arm ({arm}) seed {seed}: done earlier, reused")
                continue
            init = None
            if arm in data_for:
                if not data_for[arm]:
                    log(f"arm ({arm}): skipped, no {flag[arm]} data set given")
                    break
                items = sim_items(data_for[arm], classes)
                steps = cfg.steps
            elif arm == "c":
                items, steps = real_train, cfg.steps
            else:
                init = out / "b" / f"seed{seed}" / CHECKPOINT_NAME
                if not (out / "b" / f"seed{seed}" / "train.json").is_file():
                    log(f"arm (d) seed {seed}: skipped, arm (b) has not finished for this seed")
                    continue
                items, steps = real_train, cfg.finetune_steps
            log(f"arm ({arm}) seed {seed}: training on {len(items)} images, {steps} steps")
            t0 = time.perf_counter()
            summary = train(items, run_dir, _train_cfg(cfg, seed, steps), init=init, resume=True,
                            overrides={"steps": steps}, device=device, progress=progress)
            train_wall = time.perf_counter() - t0
            summary["experiment_wall_s"] = round(train_wall, 2)
            write_json_atomic(run_dir / "train.json", summary)
            seg = Segmenter.load(run_dir / CHECKPOINT_NAME, device)
            t0 = time.perf_counter()
            report = evaluate(seg, real_test, batch=8)
            report["eval_wall_s"] = round(time.perf_counter() - t0, 2)
            report["overlays"] = write_overlays(seg, real_test, report, run_dir / "overlays", 2)
            write_report(report, run_dir)
            d = report["overall"]
            log(f"arm ({arm}) seed {seed}: " + ", ".join(f"{c} Dice {d[c]['dice']:.3f}" for c in classes))

    result = collect(out, cfg, split)
    result["held_out_seen"] = held_out_seen(cfg, test_v)
    for arm, seen in result["held_out_seen"].items():
        if seen["videos"]:
            log(f"WARNING arm ({arm}): {seen['what']} saw frames of {len(seen['videos'])} held-out video(s) "
                f"({', '.join(seen['videos'][:8])}); its figures are not held-out. Redo it with --videos "
                f"@{out / 'split.json'}")
    if realism:
        result["realism"] = training_set_realism(cfg, out, real_train, real_test, log)
    result["domain_stats"] = _domain_stats(cfg, real, classes)
    result["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads(), "device": device}
    result["markdown"] = to_markdown(result)
    write_json_atomic(out / "report.json", {k: v for k, v in result.items() if k != "markdown"})
    from ..io import write_bytes_atomic

    write_bytes_atomic(out / "report.md", (result["markdown"] + "\n").encode())
    return result


REALISM_MAX = 400  # images per side of a two-sample test (a seeded subset of larger sets)


def training_set_realism(cfg: ExperimentConfig, out, real_train: list, real_test: list, log=lambda m: None) -> dict:
    """Two-sample accuracy of each arm's training set against the held-out real frames.

    The classifier of :func:`sim2real.translate.evaluate.two_sample_accuracy` (small CNN,
    from scratch) trains on half of the held-out videos and half of the set's renders (or
    videos), and is scored on the other halves; 0.5 = indistinguishable. Whole frame and
    central half. Cached per source in ``OUT/realism.json``.
    """
    import torch

    from ..io import read_json, write_json_atomic
    from ..translate.evaluate import _cls_pair, _split, two_sample_accuracy

    cache_path = Path(out) / "realism.json"
    cache = read_json(cache_path) if cache_path.is_file() else {}

    def tensors(items, seed):
        rng = np.random.default_rng(seed)
        if len(items) > REALISM_MAX:
            items = [items[i] for i in sorted(rng.choice(len(items), REALISM_MAX, replace=False))]
        return torch.stack([_cls_pair(it.load()[0]) for it in items]), [it.video for it in items]

    real_x, real_k = None, None
    sources = {"a": cfg.render, "e": cfg.colour, "b": cfg.translated, "c": "real:train-videos"}
    result = {}
    for arm, src in sources.items():
        if not src:
            continue
        key = f"{arm}:{Path(src).resolve() if arm != 'c' else src}"
        if key in cache:
            result[arm] = cache[key]
            continue
        if real_x is None:
            real_x, real_k = tensors(real_test, 0)
            real_tr = _split(real_k, 0)
        items = real_train if arm == "c" else sim_items(src, list(cfg.classes))
        fx, fk = tensors(items, 1)
        fake_tr = _split(fk, 1)
        rsel = torch.tensor([k in real_tr for k in real_k])
        fsel = torch.tensor([k in fake_tr for k in fk])
        res = {}
        for view, name in ((0, "whole"), (1, "centre")):
            r = two_sample_accuracy(real_x[rsel, view], real_x[~rsel, view], fx[fsel, view], fx[~fsel, view], seed=0)
            res[name] = {"accuracy": r["accuracy"], "stderr": r["stderr"], "n_test": r["n_test"]}
        res["source"] = src
        log(f"realism ({arm}): two-sample accuracy {res['whole']['accuracy']:.3f} (centre {res['centre']['accuracy']:.3f})")
        cache[key] = result[arm] = res
        write_json_atomic(cache_path, cache)
    return result


def held_out_seen(cfg: ExperimentConfig, test_videos: list[str]) -> dict:
    """Per translated arm: which held-out videos the translator / colour transfer saw (their
    images, not labels), from the real videos recorded in the data set (None: not recorded)."""
    from ..dataset.format import open_dataset

    seen = {}
    for arm, path, what in (("e", cfg.colour, "the colour transfer"), ("b", cfg.translated, "the translator")):
        if not path:
            continue
        recorded = open_dataset(path).info.get("translation", {}).get("real_videos")
        seen[arm] = {"what": what, "recorded": recorded is not None,
                     "videos": None if recorded is None else [v for v in recorded if v in set(test_videos)]}
    return seen


def _domain_stats(cfg: ExperimentConfig, real: list, classes: list[str]) -> dict:
    """Class content and colour of each available source (see :mod:`.diagnostics`)."""
    from .diagnostics import domain_stats

    from ..dataset.format import open_dataset

    stats = {"real": domain_stats(real, classes, cfg.size)}
    for name, path in (("render", cfg.render), ("colour", cfg.colour), ("translated", cfg.translated)):
        if path:
            stats[name] = domain_stats(sim_items(path, classes), classes, cfg.size)
    if cfg.translated:
        # the translator's own structure score (grayscale MS-SSIM to the source render)
        scores = [s.meta.get("translation", {}).get("msssim_gray") for s in open_dataset(cfg.translated)]
        scores = [v for v in scores if v is not None]
        if scores:
            stats["translated"]["msssim_gray_mean"] = float(np.mean(scores))
    return stats


def _settings(cfg: ExperimentConfig) -> dict:
    d = asdict(cfg)
    d.pop("seeds")  # seeds may be added later
    d["classes"], d["size"] = list(cfg.classes), list(cfg.size)
    return d


def _check_same(path: Path, new: dict, what: str, skip=()) -> None:
    from ..io import read_json, to_jsonable

    if path.is_file():
        old, new = read_json(path), to_jsonable(new)
        diff = sorted(k for k in set(old) | set(new) if k not in skip and old.get(k) != new.get(k))
        if diff:
            raise Sim2RealError(f"{path.parent} was run with different {what} ({', '.join(diff)}); "
                                f"use another --out or the same options")


def collect(out, cfg: ExperimentConfig, split: dict) -> dict:
    """Every finished arm under ``out``: per-seed results and their mean (and std)."""
    from ..io import read_json

    out = Path(out)
    arms = {}
    for arm, what in ARMS.items():
        runs = []
        for run_dir in sorted((out / arm).glob("seed*")) if (out / arm).is_dir() else []:
            if not ((run_dir / "eval.json").is_file() and (run_dir / "train.json").is_file()):
                continue
            ev, tr = read_json(run_dir / "eval.json"), read_json(run_dir / "train.json")
            runs.append({"seed": tr["config"]["seed"], "steps": tr["step"], "train_images": tr["data"]["n_images"],
                         "train_groups": tr["data"]["n_groups"], "train_sources": tr["data"]["sources"],
                         "train_wall_s": tr["wall_s"], "eval_wall_s": ev.get("eval_wall_s"),
                         "overall": ev["overall"], "dir": str(run_dir)})
        entry = {"what": what, "runs": runs}
        if runs:
            entry["mean"] = {c: {m: _mean([r["overall"][c][m] for r in runs])
                                 for m in ("dice", "iou", "dice_mean_image", "dice_mean_video")}
                             for c in cfg.classes}
            if len(runs) > 1:
                entry["std"] = {c: {m: float(np.std([r["overall"][c][m] for r in runs]))
                                    for m in ("dice", "dice_mean_image")} for c in cfg.classes}
        arms[arm] = entry
    return {"settings": _settings(cfg), "split": split, "arms": arms,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}


def _mean(vals):
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def to_markdown(result: dict) -> str:
    s, sp = result["settings"], result["split"]
    classes = s["classes"]
    lines = [
        "# Downstream segmentation: trained on renders / translations / few real labels",
        "",
        f"Scored on {sp['n_test_images']} frames of {len(sp['test_videos'])} held-out videos of `{s['real']}` "
        f"(split by video, seed {sp['split_seed']}); arms (c)/(d) use the {sp['n_train_images']} labelled frames "
        f"of videos {', '.join(sp['train_videos'])}. U-Net base {s['base']}, input {s['size'][0]}x{s['size'][1]}, "
        f"batch {s['batch']}, {s['steps']} steps ((d): {s['finetune_steps']} fine-tuning steps), "
        f"AdamW 1e-3 cosine, CE + 0.5 soft Dice, augmentation on. Dice pooled over all test pixels; "
        f"'/img' = mean per-image Dice (class absent from both prediction and truth = 1).",
        "",
        "| arm | training data | images | seeds | " + " | ".join(f"{c} Dice | {c} Dice/img" for c in classes)
        + " | two-sample acc. (whole / centre) | train wall s |",
        "|---|---|---|---|" + "---|---|" * len(classes) + "---|---|",
    ]
    realism = result.get("realism", {})

    def acc(arm):
        r = realism.get("c" if arm == "d" else arm)
        return "-" if not r else f"{r['whole']['accuracy']:.3f} / {r['centre']['accuracy']:.3f}"
    for arm, entry in result["arms"].items():
        runs = entry["runs"]
        if not runs:
            lines.append(f"| ({arm}) | {entry['what']} | - | not run | " + " | ".join("-" for _ in classes * 2) + " | - | - |")
            continue
        cells = []
        for c in classes:
            m = entry["mean"][c]
            sd = entry.get("std", {}).get(c)
            cells.append(_fmt(m["dice"]) + (f" ± {sd['dice']:.3f}" if sd else ""))
            cells.append(_fmt(m["dice_mean_image"]))
        wall = sum(r["train_wall_s"] for r in runs) / len(runs)
        lines.append(f"| ({arm}) | {entry['what']} | {runs[0]['train_images']} | "
                     f"{','.join(str(r['seed']) for r in runs)} | " + " | ".join(cells) + f" | {acc(arm)} | {wall:.0f} |")
    for arm, seen in result.get("held_out_seen", {}).items():
        if seen["videos"] is None:
            lines += ["", f"({arm}): the real videos {seen['what']} saw are not recorded (made before they were); "
                      f"it may have seen held-out frames."]
        elif seen["videos"]:
            lines += ["", f"**({arm}) is not held out: {seen['what']} saw frames (not labels) of "
                      f"{len(seen['videos'])} held-out video(s): {', '.join(seen['videos'])}.**"]
        else:
            lines += ["", f"({arm}): {seen['what']} saw no held-out video (real frames of the training videos only)."]
    if realism:
        lines += ["", "Two-sample accuracy: a small CNN trained from scratch to tell the arm's training images from "
                  "the held-out real frames (half of each side to train, split by video/render; 0.5 = "
                  "indistinguishable); (d) trains on (c)'s frames."]
    if result.get("domain_stats"):
        from .diagnostics import stats_markdown

        lines += ["", "Domain statistics (up to 100 images per source, at the training size):", ""]
        lines += stats_markdown(result["domain_stats"], classes)
        ms = result["domain_stats"].get("translated", {}).get("msssim_gray_mean")
        if ms is not None:
            lines += ["", f"Translated variants: mean grayscale MS-SSIM to their render {ms:.3f}."]
    t = result.get("torch", {})
    lines += ["", f"torch {t.get('version', '?')}, {t.get('threads', '?')} thread(s), device {t.get('device', '?')}; "
              f"{result['machine']['cpus']} CPUs ({result['machine']['platform']})."]
    return "\n".join(lines)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"
