"""The label-efficiency curve as a PNG raster, drawn with numpy alone (no plotting library).

x: the number of real training videos (one evenly spaced tick per point), y: Dice 0..1
(grid every 0.2, labelled). One colour per class; solid lines with filled markers:
pre-trained then fine-tuned; dashed lines with hollow markers: real labels only; vertical
bars: ± std over seeds. The legend is in :func:`legend_text` (the raster carries no words).
"""

from __future__ import annotations

import numpy as np

# one colour per class, in order (gallbladder green, tool blue, then others)
COLOURS = [(34, 150, 60), (31, 100, 200), (220, 110, 20), (170, 40, 160), (150, 120, 40), (20, 160, 170)]
COLOUR_NAMES = ["green", "blue", "orange", "purple", "brown", "teal"]
# 3x5 glyphs of the tick labels
GLYPHS = {
    "0": ["111", "101", "101", "101", "111"], "1": ["010", "110", "010", "010", "111"],
    "2": ["111", "001", "111", "100", "111"], "3": ["111", "001", "111", "001", "111"],
    "4": ["101", "101", "111", "001", "001"], "5": ["111", "100", "111", "001", "111"],
    "6": ["111", "100", "111", "101", "111"], "7": ["111", "001", "010", "010", "010"],
    "8": ["111", "101", "111", "101", "111"], "9": ["111", "101", "111", "001", "111"],
    ".": ["000", "000", "000", "000", "010"],
}
W, H = 480, 320
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 14, 34


def legend_text(classes, pretrain_arm) -> str:
    cols = ", ".join(f"{COLOUR_NAMES[i % len(COLOURS)]} = {c}" for i, c in enumerate(classes))
    pre = f"pre-trained on ({pretrain_arm}) then fine-tuned" if pretrain_arm else "pre-trained then fine-tuned"
    return (f"Plot: x = real training videos, y = Dice (grid every 0.2); {cols}; solid line, filled markers = "
            f"{pre}; dashed line, hollow markers = real labels only; bars = ± std over seeds.")


def _text(img, x: int, y: int, s: str, scale: int = 2, colour=(60, 60, 60)) -> None:
    """Draw ``s`` with its top-left corner at (x, y)."""
    for ch in s:
        g = GLYPHS.get(ch)
        if g is not None:
            for r, row in enumerate(g):
                for c, bit in enumerate(row):
                    if bit == "1":
                        img[y + r * scale:y + (r + 1) * scale, x + c * scale:x + (c + 1) * scale] = colour
        x += 4 * scale


def _line(img, p0, p1, colour, width: int = 2, dash: int = 0) -> None:
    (x0, y0), (x1, y1) = p0, p1
    n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
    for i, t in enumerate(np.linspace(0.0, 1.0, n)):
        if dash and (i // dash) % 2:
            continue
        x, y = int(round(x0 + t * (x1 - x0))), int(round(y0 + t * (y1 - y0)))
        img[max(0, y - width // 2):y + (width + 1) // 2, max(0, x - width // 2):x + (width + 1) // 2] = colour


def _marker(img, x: int, y: int, colour, filled: bool, r: int = 4) -> None:
    img[y - r:y + r + 1, x - r:x + r + 1] = colour
    if not filled:
        img[y - r + 2:y + r - 1, x - r + 2:x + r - 1] = 255


def curve_png(curve: dict, classes) -> np.ndarray:
    """uint8 (H, W, 3): the curve of :func:`~sim2real.segment.experiment.collect_curve`'s result."""
    img = np.full((H, W, 3), 255, np.uint8)
    x0, x1, y0, y1 = LEFT, W - RIGHT, TOP, H - BOTTOM  # plot area (y0 top)
    ns = sorted({p["n_videos"] for p in curve["points"]})
    pad = 24

    def px(n) -> int:
        return x0 + pad + (0 if len(ns) == 1 else round(ns.index(n) * (x1 - x0 - 2 * pad) / (len(ns) - 1)))

    def py(v) -> int:
        return int(round(y1 - float(np.clip(v, 0, 1)) * (y1 - y0)))

    for k in range(6):
        v = k / 5
        _line(img, (x0, py(v)), (x1, py(v)), (225, 225, 225), 1)
        _text(img, 6, py(v) - 5, f"{v:.1f}")
    _line(img, (x0, y0), (x0, y1), (60, 60, 60), 2)
    _line(img, (x0, y1), (x1, y1), (60, 60, 60), 2)
    for n in ns:
        _line(img, (px(n), y1), (px(n), y1 + 5), (60, 60, 60), 2)
        _text(img, px(n) - 4 * len(str(n)) + 1, y1 + 10, str(n))
    for pre, filled, dash in ((None, False, 6), (curve.get("pretrain_arm"), True, 0)):
        pts = [p for p in curve["points"] if p["pretrain"] == pre]
        if pre is None and filled or not pts:
            continue
        for ci, c in enumerate(classes):
            colour = COLOURS[ci % len(COLOURS)]
            xy = [(px(p["n_videos"]), py(p["mean"][c])) for p in pts if p["mean"][c] is not None]
            for a, b in zip(xy, xy[1:]):
                _line(img, a, b, colour, 2, dash)
            for p in pts:
                if p["mean"][c] is None:
                    continue
                x, sd = px(p["n_videos"]), p["std"].get(c, 0.0)
                if sd > 0:
                    _line(img, (x, py(p["mean"][c] - sd)), (x, py(p["mean"][c] + sd)), colour, 1)
                _marker(img, x, py(p["mean"][c]), colour, filled)
    return img
