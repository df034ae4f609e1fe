"""Score a segmenter on labelled images: per-class Dice/IoU overall, per video, per image;
a JSON report, a text table and overlays of the best and worst images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import IGNORE, Item
from .metrics import confusion_counts, dice_iou, summarise

EMPTY_CONVENTION = ("a class absent from both prediction and truth of an image scores Dice = IoU = 1 "
                    "for that image; 'dice'/'iou' are pooled over all pixels (TP, FP, FN summed), "
                    "'*_mean_image' average per-image scores; pixels labelled ignore (255) are not scored")


def evaluate(segmenter, items: list[Item], batch: int = 8, progress=None) -> dict:
    """Per-image counts and the report dict (no files written); see :func:`write_report`."""
    classes = segmenter.classes
    per_image = []
    counts = []
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        loaded = [it.load() for it in chunk]
        preds = segmenter.predict([img for img, _ in loaded], batch)
        for it, (_, lab), pred in zip(chunk, loaded, preds):
            c = confusion_counts(pred, lab, segmenter.num_classes, IGNORE)
            d, u = dice_iou(c)
            counts.append(c)
            per_image.append({"id": it.id, "video": it.video, "source": it.source,
                              "dice": {n: float(d[k]) for k, n in enumerate(classes, 1)},
                              "iou": {n: float(u[k]) for k, n in enumerate(classes, 1)},
                              "present": {n: bool(c[k, 0] + c[k, 2] > 0) for k, n in enumerate(classes, 1)}})
        if progress is not None:
            progress.update(len(chunk))
    counts_arr = np.stack(counts)
    videos: dict[str, list[int]] = {}
    for i, rec in enumerate(per_image):
        videos.setdefault(f"{rec['video']}", []).append(i)
    per_video = {v: {"n_images": len(ix), **summarise(counts_arr[ix], classes)} for v, ix in videos.items()}
    overall = summarise(counts_arr, classes)
    for name in classes:
        vals = [pv[name]["dice"] for pv in per_video.values() if pv[name]["dice"] is not None]
        overall[name]["dice_mean_video"] = float(np.mean(vals)) if vals else None
    return {"checkpoint": segmenter.source, "checkpoint_step": segmenter.step, "classes": classes,
            "size": list(segmenter.config.size), "n_images": len(items), "n_videos": len(videos),
            "sources": sorted({it.source for it in items}), "convention": EMPTY_CONVENTION,
            "overall": overall, "per_video": per_video, "per_image": per_image}


def rank_images(report: dict, k: int) -> tuple[list[int], list[int]]:
    """Indices of the ``k`` best and ``k`` worst images by mean Dice over their informative
    classes (present in truth or prediction); images with no class in either are not ranked,
    unless no other image is left."""
    scores = []
    for r in report["per_image"]:
        vals = [d for c, d in r["dice"].items() if r["present"][c] or d < 1.0]
        scores.append(np.mean(vals) if vals else np.nan)
    scores = np.array(scores, dtype=np.float64)
    ranked = np.nonzero(~np.isnan(scores))[0]
    if ranked.size == 0:
        ranked = np.arange(len(scores))
        scores = np.ones(len(scores))
    order = ranked[np.argsort(-scores[ranked], kind="stable")]
    k = min(k, len(order))
    return order[:k].tolist(), order[::-1][:k].tolist()


def overlay(image: np.ndarray, label: np.ndarray, colors: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with class colours blended in; ignored pixels are hatched grey."""
    out = image.astype(np.float32)
    fg = (label > 0) & (label != IGNORE)
    out[fg] = (1 - alpha) * out[fg] + alpha * colors[label[fg]]
    ign = label == IGNORE
    yy, xx = np.nonzero(ign)
    stripe = ((yy + xx) // 4) % 2 == 0
    out[yy[stripe], xx[stripe]] = 128
    return out.clip(0, 255).astype(np.uint8)


def class_colors(classes: list[str]) -> np.ndarray:
    """(256, 3) colours: the class table's colour where a name matches (tool -> tool_shaft)."""
    from ..classes import DEFAULT_TABLE

    fallback = [(230, 25, 75), (255, 225, 25), (245, 130, 48), (145, 30, 180), (70, 240, 240)]
    lut = np.zeros((256, 3), np.float32)
    for k, name in enumerate(classes, 1):
        match = [c for c in DEFAULT_TABLE if c.name == name or c.name.startswith(name + "_")]
        lut[k] = match[0].color if match else fallback[k % len(fallback)]
    return lut


def write_overlays(segmenter, items: list[Item], report: dict, out_dir, k: int = 4) -> dict:
    """``best_XX_<id>.png`` / ``worst_XX_<id>.png``: image | truth | prediction side by side."""
    from ..io import write_png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob("best_*.png"), *out_dir.glob("worst_*.png")]:
        stale.unlink()  # from an earlier evaluation into the same folder
    best, worst = rank_images(report, k)
    colors = class_colors(segmenter.classes)
    written = {"best": [], "worst": []}
    for kind, idx in (("best", best), ("worst", worst)):
        for rank, i in enumerate(idx):
            img, lab = items[i].load()
            pred = segmenter.predict([img])[0]
            gap = np.full((img.shape[0], 4, 3), 255, np.uint8)
            panel = np.concatenate([img, gap, overlay(img, lab, colors), gap, overlay(img, pred, colors)], axis=1)
            name = f"{kind}_{rank:02d}_{_safe(items[i].id)}.png"
            write_png(out_dir / name, panel)
            written[kind].append({"file": name, "id": items[i].id, "dice": report["per_image"][i]["dice"]})
    return written


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)


def format_table(report: dict, per_video: bool = True) -> str:
    """A plain-text table: overall per class, then one row per video."""
    classes = report["classes"]
    lines = [f"{report['n_images']} images, {report['n_videos']} videos; checkpoint {report['checkpoint']} "
             f"(step {report['checkpoint_step']})",
             f"{'class':<14}{'Dice':>8}{'IoU':>8}{'Dice/img':>10}{'IoU/img':>9}{'Dice/vid':>10}{'present':>9}"]
    for name in classes:
        o = report["overall"][name]
        lines.append(f"{name:<14}{_f(o['dice'])}{_f(o['iou'])}{_f(o['dice_mean_image'], 10)}"
                     f"{_f(o['iou_mean_image'], 9)}{_f(o['dice_mean_video'], 10)}{o['images_present']:>9d}")
    if per_video:
        lines.append("")
        lines.append(f"{'video':<10}{'images':>7}" + "".join(f"{'Dice ' + n[:9]:>16}" for n in classes))
        for v, pv in sorted(report["per_video"].items(), key=lambda kv: _vkey(kv[0])):
            lines.append(f"{v:<10}{pv['n_images']:>7d}" + "".join(_f(pv[n]["dice"], 16) for n in classes))
    return "\n".join(lines)


def _vkey(v: str):
    return (0, int(v), v) if v.isdigit() else (1, 0, v)


def _f(x, width: int = 8) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:>{width}.3f}"


def write_report(report: dict, out_dir) -> None:
    """``eval.json`` and ``eval.txt`` in ``out_dir``."""
    from ..io import write_bytes_atomic, write_json_atomic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "eval.json", report)
    write_bytes_atomic(out_dir / "eval.txt", (format_table(report) + "\n").encode())
