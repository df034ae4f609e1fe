"""Instrument figures quoted in docs/results.md: placement rate per preset, and how well label
normals agree with normals derived from depth and K, per class.

    python benchmarks/instrument_checks.py placement                # 50 samples of each shipped preset
    python benchmarks/instrument_checks.py normals --samples 6      # needs bpy

placement: instruments placed / requested (meta.instruments_placed / _requested) over
--samples samples, seed 0, per preset (numpy only; patient presets need ../shared/data).
normals: default preset at 320x192 with 2-3 instruments and no field-of-view mask; per
class, the median angle between label normals and normals from depth + K on the smooth
interior (class masks eroded by 1 px; depth discontinuities and creases excluded, as in
tests/normal_check.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def placement(presets: list[str], samples: int) -> None:
    from sim2real.config import load_config
    from sim2real.scene.sampler import Sampler

    for name in presets:
        s = Sampler(load_config(name))
        requested = placed = 0
        for i in range(samples):
            d = s(0, i)
            requested += d.instruments_requested
            placed += len(d.instruments)
        print(f"{name:10s} placed {placed}/{requested} instruments ({placed / max(requested, 1):.0%})")


def normals(samples: int) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from normal_check import class_normal_errors

    from sim2real.blender.renderer import BlenderRenderer
    from sim2real.classes import DEFAULT_TABLE
    from sim2real.config import load_config
    from sim2real.scene.sampler import Sampler

    cfg = load_config("default", {"render.resolution": [320, 192], "render.samples": 1, "render.denoise": False,
                                  "render.fov_mask": False, "instruments.count": [2, 3]})
    sampler, renderer = Sampler(cfg), BlenderRenderer()
    pooled: dict[int, list] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(samples):
                d = sampler(0, i)
                arrays, _ = renderer.render(d, tmp)
                for cid, e in class_normal_errors(arrays, d.camera.k).items():
                    pooled.setdefault(cid, []).append(e)
    finally:
        renderer.close()
    for cid, es in sorted(pooled.items()):
        e = np.concatenate(es)
        if len(e):
            print(f"{DEFAULT_TABLE[cid].name:15s} {len(e):7d} px  median {np.median(e):5.2f} deg  "
                  f"p90 {np.percentile(e, 90):6.2f} deg")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["placement", "normals"])
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--presets", nargs="+", default=["default", "patient_a", "patient_b"])
    a = ap.parse_args()
    if a.what == "placement":
        placement(a.presets, a.samples or 50)
    else:
        normals(a.samples or 6)


if __name__ == "__main__":
    main()
