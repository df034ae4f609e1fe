"""The downstream proof (issue 5 section 3), end to end, at a size a CPU can do.

Segmenters for the chosen classes (gallbladder, tool) are trained on
(a) untranslated renders, (b) translated renders, (c) real labelled frames of a few
videos, (d) (b)'s model fine-tuned on (c)'s frames, and all are scored on the held-out
videos of the real folder (split by video, never by frame); (e) and (f) are the
no-training baselines (colour and Fourier transfer). Each arm lives in
``OUT/<arm>/seed<k>/`` (checkpoint, train.json, eval.json/txt, overlays/); finished arms
are reused, so arms can be run as their data appear. ``OUT/report.json`` and
``OUT/report.md`` always describe every arm found on disk.

The label-efficiency curve (``curve``) trains on the real labels of 1, 2, 4, ... of the
training videos (nested, seeded subsets: each holds the smaller ones), each from scratch
and fine-tuned from a zero-label arm's checkpoint; its points live in
``OUT/curve/n<videos>_real/seed<k>/`` and ``OUT/curve/n<videos>_pre-<arm>/seed<k>/``.
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
    "r": "renders of a second preset, e.g. randomized (0 real labels)",
    "e": "colour-transferred renders (0 real labels)",
    "f": "Fourier-transferred renders (0 real labels)",
    "b": "translated renders (0 real labels)",
    "c": "real labelled frames of the training videos",
    "d": "(b) pre-training, fine-tuned on (c)'s frames",
}


@dataclass(frozen=True)
class ExperimentConfig:
    real: str
    real_map: str = "gallbladder=5,tool=6"
    render: str | None = None
    render2: str | None = None           # arm (r): renders of a second preset (e.g. scenes/randomized.toml)
    translated: str | None = None
    colour: str | None = None
    fourier: str | None = None
    classes: tuple[str, ...] = DEFAULT_CLASSES
    train_videos: int = 4
    split_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    size: tuple[int, int] = (160, 96)
    steps: int = 600
    finetune_steps: int = 600
    batch: int = 8
    base: int = 16
    curve: tuple[int, ...] = ()          # real training videos per point of the label-efficiency curve
    pretrain_arm: str | None = None      # the curve's pre-training arm (None: the best zero-label arm run)


ZERO_LABEL_ARMS = ("a", "r", "e", "f", "b")
# settings that may differ between calls into one folder (data sets appear; every run records its sources)
MAY_CHANGE = ("render", "render2", "translated", "colour", "fourier", "curve", "pretrain_arm")


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
    _check_same(out / "experiment.json", _settings(cfg), "settings", skip=MAY_CHANGE)
    order = curve_order(train_v, cfg.split_seed)
    check_curve(cfg, train_v)
    write_json_atomic(out / "experiment.json", _settings(cfg))

    def fit(items, run_dir, seed, steps, init=None, overlays=2):
        log(f"{run_dir.relative_to(out)}: training on {len(items)} images, {steps} steps")
        t0 = time.perf_counter()
        summary = train(items, run_dir, _train_cfg(cfg, seed, steps), init=init, resume=True,
                        overrides={"steps": steps}, device=device, progress=progress)
        summary["experiment_wall_s"] = round(time.perf_counter() - t0, 2)
        write_json_atomic(run_dir / "train.json", summary)
        seg = Segmenter.load(run_dir / CHECKPOINT_NAME, device)
        t0 = time.perf_counter()
        report = evaluate(seg, real_test, batch=8)
        report["eval_wall_s"] = round(time.perf_counter() - t0, 2)
        if overlays:
            report["overlays"] = write_overlays(seg, real_test, report, run_dir / "overlays", overlays)
        write_report(report, run_dir)
        d = report["overall"]
        log(f"{run_dir.relative_to(out)}: " + ", ".join(f"{c} Dice {d[c]['dice']:.3f}" for c in classes))

    data_for = {"a": cfg.render, "r": cfg.render2, "b": cfg.translated, "e": cfg.colour, "f": cfg.fourier}
    flag = {"a": "--render", "r": "--render2", "b": "--translated", "e": "--colour", "f": "--fourier"}
    for arm in [a for a in ARMS if a in arms]:
        for seed in cfg.seeds:
            run_dir = out / arm / f"seed{seed}"
            if _finished(run_dir):
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
            fit(items, run_dir, seed, steps, init)

    pre = None
    if cfg.curve:
        arms_done = collect(out, cfg, split)["arms"]
        pre = cfg.pretrain_arm or best_zero_label_arm(arms_done, classes)
        if pre is None:
            log("curve: no zero-label arm has finished; only the real-only points are trained")
        for n in sorted(set(cfg.curve)):
            subset = set(order[:n])
            items = [it for it in real_train if it.video in subset]
            for seed in cfg.seeds:
                run_dir = out / "curve" / f"n{n}_real" / f"seed{seed}"
                if _finished(run_dir):
                    log(f"curve {n} video(s), real only, seed {seed}: done earlier, reused")
                else:
                    fit(items, run_dir, seed, cfg.steps, overlays=0)
                if pre is None:
                    continue
                init_dir = out / pre / f"seed{seed}"
                run_dir = out / "curve" / f"n{n}_pre-{pre}" / f"seed{seed}"
                if _finished(run_dir):
                    log(f"curve {n} video(s), pre-trained on ({pre}), seed {seed}: done earlier, reused")
                elif not (init_dir / "train.json").is_file():
                    log(f"curve {n} video(s), pre-trained on ({pre}), seed {seed}: skipped, arm ({pre}) has not "
                        f"finished for this seed")
                else:
                    fit(items, run_dir, seed, cfg.finetune_steps, init=init_dir / CHECKPOINT_NAME, overlays=0)

    result = collect(out, cfg, split)
    if pre is None:  # points on disk from earlier calls are shown against the arm chosen now
        pre = cfg.pretrain_arm or best_zero_label_arm(result["arms"], classes)
    result["curve"] = collect_curve(out, cfg, order, pre)
    if result["curve"]["points"]:
        from .curveplot import curve_png

        from ..io import write_png

        write_png(out / "curve.png", curve_png(result["curve"], classes))
        result["curve"]["plot"] = "curve.png"
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
    central half; mean and sd over the classifier seeds of
    :func:`~sim2real.translate.evaluate.two_sample_repeated` (the split stays fixed). Cached
    per source in ``OUT/realism.json``.
    """
    import torch

    from ..io import read_json, write_json_atomic
    from ..translate.evaluate import CLASSIFIER_SEEDS, _cls_pair, _split, two_sample_repeated

    cache_path = Path(out) / "realism.json"
    cache = read_json(cache_path) if cache_path.is_file() else {}

    def tensors(items, seed):
        rng = np.random.default_rng(seed)
        if len(items) > REALISM_MAX:
            items = [items[i] for i in sorted(rng.choice(len(items), REALISM_MAX, replace=False))]
        return torch.stack([_cls_pair(it.load()[0]) for it in items]), [it.video for it in items]

    real_x, real_k = None, None
    sources = {"a": cfg.render, "r": cfg.render2, "e": cfg.colour, "f": cfg.fourier, "b": cfg.translated,
               "c": "real:train-videos"}
    result = {}
    for arm, src in sources.items():
        if not src:
            continue
        key = f"{arm}:{Path(src).resolve() if arm != 'c' else src}:seeds{CLASSIFIER_SEEDS}"
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
            r = two_sample_repeated(real_x[rsel, view], real_x[~rsel, view], fx[fsel, view], fx[~fsel, view], seed=0)
            res[name] = {k: r[k] for k in ("accuracy", "sd", "per_seed", "stderr", "n_test")}
        res["source"] = src
        log(f"realism ({arm}): two-sample accuracy {res['whole']['accuracy']:.3f} ± {res['whole']['sd']:.3f} "
            f"(centre {res['centre']['accuracy']:.3f} ± {res['centre']['sd']:.3f}, {CLASSIFIER_SEEDS} classifier seeds)")
        cache[key] = result[arm] = res
        write_json_atomic(cache_path, cache)
    return result


def held_out_seen(cfg: ExperimentConfig, test_videos: list[str]) -> dict:
    """Per translated arm: which held-out videos the translator / colour transfer saw (their
    images, not labels), from the real videos recorded in the data set (None: not recorded)."""
    from ..dataset.format import open_dataset

    seen = {}
    for arm, path, what in (("e", cfg.colour, "the colour transfer"), ("f", cfg.fourier, "the Fourier transfer"),
                            ("b", cfg.translated, "the translator")):
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
    for name, path in (("render", cfg.render), ("render2", cfg.render2), ("colour", cfg.colour), ("fourier", cfg.fourier),
                       ("translated", cfg.translated)):
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
    d["classes"], d["size"], d["curve"] = list(cfg.classes), list(cfg.size), list(cfg.curve)
    return d


def _finished(run_dir: Path) -> bool:
    return (run_dir / "eval.json").is_file() and (run_dir / "train.json").is_file()


def curve_order(train_videos: list[str], split_seed: int) -> list[str]:
    """The training videos in the seeded order the curve takes them: point ``n`` uses the
    first ``n``, so every subset holds the smaller ones (1 in 2 in 4 in 8)."""
    perm = np.random.default_rng([int(split_seed), 0x5C]).permutation(len(train_videos))
    return [train_videos[i] for i in perm]


def check_curve(cfg: ExperimentConfig, train_videos: list[str]) -> None:
    if any(int(n) < 1 for n in cfg.curve):
        raise Sim2RealError(f"--curve {','.join(map(str, cfg.curve))}: each point is a number of videos >= 1")
    too_many = [n for n in cfg.curve if n > len(train_videos)]
    if too_many:
        raise Sim2RealError(f"--curve {','.join(map(str, cfg.curve))}: the experiment has {len(train_videos)} "
                            f"training video(s), not {max(too_many)}; raise --train-videos or drop the larger points")
    if cfg.pretrain_arm is not None and cfg.pretrain_arm not in ZERO_LABEL_ARMS:
        raise Sim2RealError(f"--pretrain-arm {cfg.pretrain_arm}: choose a zero-label arm "
                            f"({', '.join(ZERO_LABEL_ARMS)})")


def best_zero_label_arm(arms: dict, classes) -> str | None:
    """The finished zero-label arm with the best mean Dice over ``classes`` (None: none finished)."""
    scores = {a: float(np.mean([arms[a]["mean"][c]["dice"] for c in classes]))
              for a in ZERO_LABEL_ARMS if arms.get(a, {}).get("runs")}
    return max(scores, key=lambda a: (scores[a], -ZERO_LABEL_ARMS.index(a))) if scores else None


def collect_curve(out, cfg: ExperimentConfig, order: list[str], pretrain_arm: str | None) -> dict:
    """Every finished point of the label-efficiency curve under ``out/curve``, with its
    per-seed results, mean and std, and its gain over real-only training of the same videos."""
    from ..io import read_json

    points = []
    root = Path(out) / "curve"
    for point_dir in sorted(root.iterdir()) if root.is_dir() else []:
        name, _, pre = point_dir.name.partition("_")
        if not (name.startswith("n") and name[1:].isdigit() and (pre == "real" or pre.startswith("pre-"))):
            continue
        runs = []
        for run_dir in sorted(point_dir.glob("seed*")):
            if _finished(run_dir):
                ev, tr = read_json(run_dir / "eval.json"), read_json(run_dir / "train.json")
                runs.append({"seed": tr["config"]["seed"], "steps": tr["step"], "train_images": tr["data"]["n_images"],
                             "train_wall_s": tr["wall_s"], "init_from": None, "overall": ev["overall"],
                             "dir": str(run_dir)})
        if not runs:
            continue
        n = int(name[1:])
        p = {"n_videos": n, "videos": order[:n], "pretrain": None if pre == "real" else pre[4:], "runs": runs,
             "mean": {c: _mean([r["overall"][c]["dice"] for r in runs]) for c in cfg.classes},
             "std": {c: float(np.std([r["overall"][c]["dice"] for r in runs])) for c in cfg.classes}}
        points.append(p)
    points.sort(key=lambda p: (p["n_videos"], p["pretrain"] or ""))
    base = {p["n_videos"]: p for p in points if p["pretrain"] is None}
    for p in points:
        b = base.get(p["n_videos"])
        if p["pretrain"] is not None and b is not None:
            p["gain"] = {c: p["mean"][c] - b["mean"][c] for c in cfg.classes}
    return {"order": order, "requested": sorted(set(cfg.curve)), "pretrain_arm": pretrain_arm,
            "pretrain_choice": "given" if cfg.pretrain_arm else "best zero-label arm", "points": points}


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
        if not r:
            return "-"
        return " / ".join(f"{r[v]['accuracy']:.3f}" + (f" ± {r[v]['sd']:.3f}" if r[v].get("sd") is not None else "")
                          for v in ("whole", "centre"))
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
    lines += curve_markdown(result.get("curve"), classes)
    if realism:
        n_cls = max(len(r["whole"].get("per_seed", [0])) for r in realism.values())
        lines += ["", "Two-sample accuracy: a small CNN trained from scratch to tell the arm's training images from "
                  "the held-out real frames (half of each side to train, split by video/render; 0.5 = "
                  f"indistinguishable; mean ± sd of {n_cls} classifier seed(s) on one split); (d) trains on "
                  "(c)'s frames."]
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


def curve_markdown(curve: dict | None, classes: list[str]) -> list[str]:
    """The label-efficiency table (and plot link) of :func:`collect_curve`'s result."""
    if not curve or not curve["points"]:
        return []
    lines = ["", "## Label-efficiency curve", "",
             f"Real labels of the first n training videos in the seeded order {', '.join(curve['order'])} "
             f"(each subset holds the smaller ones; no held-out video), from scratch ('real only') and fine-tuned "
             f"from a zero-label arm's checkpoint (the pre-training arm"
             + (f" ({curve['pretrain_arm']}), {curve['pretrain_choice']})." if curve["pretrain_arm"] else ").")
             + " Dice pooled over the held-out frames; mean ± std over seeds.", "",
             "| real videos | labelled frames | pre-training | seeds | " + " | ".join(f"{c} Dice" for c in classes)
             + " | gain over real only (" + " / ".join(classes) + ") |",
             "|---|---|---|---|" + "---|" * len(classes) + "---|"]
    for p in curve["points"]:
        cells = [_fmt(p["mean"][c]) + (f" ± {p['std'][c]:.3f}" if len(p["runs"]) > 1 else "") for c in classes]
        gain = " / ".join(f"{p['gain'][c]:+.3f}" for c in classes) if "gain" in p else "-"
        what = "none (real only)" if p["pretrain"] is None else f"({p['pretrain']}) {ARMS[p['pretrain']]}"
        lines.append(f"| {p['n_videos']} | {p['runs'][0]['train_images']} | {what} | "
                     f"{','.join(str(r['seed']) for r in p['runs'])} | " + " | ".join(cells) + f" | {gain} |")
    if curve.get("plot"):
        from .curveplot import legend_text

        lines += ["", f"![label-efficiency curve]({curve['plot']})", "", legend_text(classes, curve["pretrain_arm"])]
    return lines


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"
