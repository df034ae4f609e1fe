"""Domain statistics that explain a segmentation gap: how much of each class a source
shows, and what colour it has (renders vs translations vs real frames)."""

from __future__ import annotations

import numpy as np

from .data import IGNORE, Item, preload


def domain_stats(items: list[Item], classes: list[str], size=(160, 96), max_items: int = 100, seed: int = 0) -> dict:
    """Class pixel fractions, images containing each class, and mean RGB (0..255) overall
    (non-black pixels) and per class, over up to ``max_items`` items picked with ``seed``."""
    if len(items) > max_items:
        pick = np.sort(np.random.default_rng(seed).choice(len(items), max_items, replace=False))
        items = [items[i] for i in pick]
    images, labels = preload(items, size)
    img = images.permute(0, 2, 3, 1).numpy().astype(np.float64)
    lab = labels.numpy()
    lit = img.max(-1) > 10  # inside the field of view (not the black border)
    valid = lab != IGNORE
    out = {"n_images": len(items), "lit_fraction": float(lit.mean()),
           "mean_rgb_lit": img[lit].mean(0).round(1).tolist() if lit.any() else None,
           "std_rgb_lit": img[lit].std(0).round(1).tolist() if lit.any() else None, "classes": {}}
    for k, name in enumerate(classes, 1):
        m = lab == k
        out["classes"][name] = {
            "pixel_fraction_of_lit": float(m.sum() / max(1, (lit & valid).sum())),
            "images_with": float(m.reshape(len(items), -1).any(1).mean()),
            "mean_rgb": img[m].mean(0).round(1).tolist() if m.any() else None,
        }
    return out


def stats_markdown(stats: dict[str, dict], classes: list[str]) -> list[str]:
    """Markdown table rows: one line per source."""
    head = "| source | images | mean RGB (lit) | " + " | ".join(
        f"{c} % of lit px | {c} in % imgs | {c} mean RGB" for c in classes) + " |"
    lines = [head, "|---|---|---|" + "---|---|---|" * len(classes)]
    for src, s in stats.items():
        cells = []
        for c in classes:
            cs = s["classes"][c]
            rgb = "-" if cs["mean_rgb"] is None else ",".join(f"{v:.0f}" for v in cs["mean_rgb"])
            cells += [f"{100 * cs['pixel_fraction_of_lit']:.1f}", f"{100 * cs['images_with']:.0f}", rgb]
        rgb = "-" if s["mean_rgb_lit"] is None else ",".join(f"{v:.0f}" for v in s["mean_rgb_lit"])
        lines.append(f"| {src} | {s['n_images']} | {rgb} | " + " | ".join(cells) + " |")
    return lines
