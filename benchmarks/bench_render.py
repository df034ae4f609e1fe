"""Render speed and memory: prints the figures quoted in docs/results.md ("Speed").

    python benchmarks/bench_render.py                      # speed at 452x256 + memory run
    python benchmarks/bench_render.py --samples 12 --memory-samples 200 --set render.samples=8

Speed, in one interleaved run: for every sample the pipeline renders a labelled sample
exactly as ``sim2real render`` does (sampling, building, image render, label render,
post-processing, writing every file, committing the folder); then, on the very scene
the pipeline just built, a **bare Cycles render**: the same render settings (samples,
denoising, bounces, resolution, noise seed), no label passes, no persistent data from
the pipeline's renders, the image written to PNG by Blender itself. That is what
rendering the scene with plain Blender costs. Interleaving pairs every pipeline sample
with its bare render under the same machine load; the script reports medians over the
samples (after one warm-up sample, which loads the Cycles kernels) and the median of
the per-sample ratios.

- labels: everything the pipeline does only because of the labels: the label render and
  reading its EXR, turning passes into ids/depth/normals, and writing segmentation.png,
  instances.png, depth.exr, normals.exr and meta.json.
- overhead: (pipeline total - bare) / bare, where the pipeline total is the wall time from
  the end of one sample to the commit of the next (everything included).

Memory: resident set size after 10 and after --memory-samples samples in one process
(small images: growth comes from datablocks, not pixels).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

LABEL_FILES = ("segmentation.png", "instances.png", "depth.exr", "normals.exr", "meta.json")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Clock:
    """Accumulates wall time per key for the sample in progress (wraps library functions)."""

    def __init__(self):
        self.now: dict[str, float] = defaultdict(float)

    def wrap(self, module, name: str, key):
        fn = getattr(module, name)

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.now[key(*args) if callable(key) else key] += time.perf_counter() - t

        setattr(module, name, timed)

    def take(self) -> dict[str, float]:
        out, self.now = dict(self.now), defaultdict(float)
        return out


def bare_render(scene, rs, path: Path) -> float:
    """Render the built scene as plain Blender would: same settings, Blender writes the PNG."""
    from sim2real.blender import passes

    scene.render.use_persistent_data = False  # sync and BVH from scratch, as the pipeline's image render
    img = scene.render.image_settings
    if hasattr(img, "media_type"):  # Blender 5.0
        img.media_type = "IMAGE"
    img.file_format = "PNG"
    img.color_mode = "RGB"
    img.color_depth = "8"
    with passes.quiet_render_output():
        t = time.perf_counter()
        passes.render_image(scene, rs, path)  # the pipeline's own image settings, passes off
        return time.perf_counter() - t


def image_diff(bare_png: Path, sample_dir: Path, desc) -> float:
    """Largest 8-bit difference between the bare render and the sample's image.png inside the
    field of view (outside it the pipeline blacks the image): 0-1 says it is the same render."""
    import numpy as np

    from sim2real.io import read_png
    from sim2real.imaging.postprocess import fov_mask

    a, b = read_png(bare_png)[..., :3].astype(int), read_png(sample_dir / "image.png").astype(int)
    inside = fov_mask(desc.camera.width, desc.camera.height, desc.render.fov_mask)
    return float(np.abs(a - b)[inside].max())


def speed(args, tmp: Path) -> None:
    import sim2real.blender.passes as passes_mod
    import sim2real.blender.renderer as renderer_mod
    import sim2real.dataset.format as dataset_format
    import sim2real.io
    import sim2real.io.exr
    import sim2real.imaging.camera_effects as camera_effects
    import sim2real.imaging.postprocess as postprocess
    from sim2real.blender.renderer import BlenderRenderer
    from sim2real.rendering.job import RenderJob, parse_set, render_indices
    from sim2real.scene.sampler import Sampler

    clock = Clock()
    # the data-set writer's file writers (looked up at call time by dataset.write_render_files)
    clock.wrap(sim2real.io, "write_png", lambda path, *a, **k: Path(path).name)
    clock.wrap(sim2real.io.exr, "write_exr", lambda path, *a, **k: Path(path).name)
    clock.wrap(dataset_format, "write_json_atomic", lambda path, *a, **k: Path(path).name)
    clock.wrap(renderer_mod, "read_exr", "read image exr")
    clock.wrap(passes_mod, "read_exr", "read label exr")
    clock.wrap(postprocess, "linear_to_srgb8", "image to sRGB")
    clock.wrap(camera_effects, "apply", "image to sRGB")  # with camera effects on, they make the sRGB image

    job = RenderJob(args.preset, str(tmp / "speed"), args.samples + 1, seed=123, overrides=parse_set(args.set))
    cfg = job.config()
    effects_on = bool(cfg["camera_effects"]["enabled"])
    sampler = Sampler(cfg)
    last_desc = []

    def sample(seed, index):
        last_desc[:] = [sampler(seed, index)]
        return last_desc[0]

    renderer = BlenderRenderer()
    rows = []
    mark = [time.perf_counter()]

    def on_done(i, timings):
        total = time.perf_counter() - mark[0]
        parts = clock.take()
        bare = bare_render(renderer.scene, last_desc[0].render, tmp / f"bare_{i:06d}.png")
        clock.take()  # nothing of the bare render counts for the pipeline
        rows.append({"total": total, "bare": bare, **timings, **parts,
                     "image_diff": image_diff(tmp / f"bare_{i:06d}.png", tmp / "speed" / "samples" / f"{i:06d}",
                                              last_desc[0])})
        mark[0] = time.perf_counter()  # the bare render is not part of the next sample

    render_indices(job, job.indices(), on_done=on_done, sampler=sample, renderer=renderer)
    rows = rows[1:]  # warm-up (kernel load) excluded
    med = {k: statistics.median(r.get(k, 0.0) for r in rows) for k in rows[0]}

    def labels_of(r):
        post_labels = r["postprocess_s"] - r["read image exr"] - r["image to sRGB"]
        return r["labels_s"] + post_labels + sum(r[f] for f in LABEL_FILES)

    for r in rows:
        r["labels_all"] = labels_of(r)
        r["ratio_total"] = r["total"] / r["bare"]
        r["ratio_labels"] = r["labels_all"] / r["bare"]
    med.update({k: statistics.median(r[k] for r in rows) for k in ("labels_all", "ratio_total", "ratio_labels")})
    rs = cfg["render"]
    w, h = rs["resolution"]
    print(f"preset {args.preset}: {w}x{h}, {rs['samples']} spp, denoise={rs['denoise']}, "
          f"max_bounces={rs['max_bounces']}, {len(rows)} samples after a warm-up (medians, s)")
    image_side = med["image_s"] + med["read image exr"] + med["image to sRGB"] + med["image.png"]
    lines = [
        ("bare Cycles render (same scene and settings, PNG by Blender)", med["bare"]),
        ("pipeline: seconds per labelled sample (wall, everything)", med["total"]),
        ("  sampling the scene description", med["sample_s"]),
        ("  building the Blender scene + render settings", med["build_s"]),
        ("  image render (Blender, float EXR)", med["image_s"]),
        ("  image: read EXR + sRGB + write image.png", image_side - med["image_s"]),
        ("  label render (1 spp, pixel-centred) + read its EXR", med["labels_s"]),
        ("  labels: passes -> ids, depth, normals", med["labels_all"] - med["labels_s"]
         - sum(med[f] for f in LABEL_FILES)),
        ("  labels: write " + ", ".join(LABEL_FILES), sum(med[f] for f in LABEL_FILES)),
        ("  labels, everything (render + post-processing + files)", med["labels_all"]),
    ]
    for name, v in lines:
        print(f"  {name:62s} {v:7.3f}")
    for f in ("image.png", *LABEL_FILES):
        print(f"      write {f:20s} {med[f]:.4f}")
    print(f"  bare image vs the pipeline's image.png: max difference {max(r['image_diff'] for r in rows):.0f} "
          f"of 255 inside the field of view (the same render"
          + (")" if not effects_on else "; the pipeline's image also has the image-only camera effects: "
             "--set camera_effects.enabled=false checks that the renders agree)"))
    print(f"  labels over bare Cycles:   {100 * med['labels_all'] / med['bare']:+.1f} % of the median bare render "
          f"(median per-sample ratio {100 * med['ratio_labels']:+.1f} %; target <= +15 %)")
    print(f"  pipeline over bare Cycles: {100 * (med['total'] / med['bare'] - 1):+.1f} % of the median bare render "
          f"(median per-sample ratio {100 * (med['ratio_total'] - 1):+.1f} %; target <= +10 %)")
    # The same overhead split in two: the pipeline's own work around its image render (measured
    # directly, little noise), and its image render against the bare one (two Cycles renders of
    # one scene: equal up to the machine's noise, and what writing EXR instead of PNG costs).
    own = statistics.median((r["total"] - r["image_s"]) / r["bare"] for r in rows)
    img = [r["image_s"] / r["bare"] - 1 for r in rows]
    print(f"    = work around the image render {100 * own:+.1f} % (median per-sample)"
          f" + image render vs bare {100 * statistics.median(img):+.1f} % (median; quartiles "
          f"{100 * statistics.quantiles(img, n=4)[0]:+.1f} .. {100 * statistics.quantiles(img, n=4)[2]:+.1f} %)")
    if args.rows:
        for r in rows:
            print("   ", " ".join(f"{k}={v:.3f}" for k, v in sorted(r.items())))


def memory(args, tmp: Path) -> None:
    from sim2real.rendering.job import RenderJob, render_indices

    mem = {}
    job = RenderJob(args.preset, str(tmp / "mem"), args.memory_samples, seed=7,
                    overrides={"render.resolution": [128, 72], "render.samples": 1, "render.denoise": False})
    t0 = time.perf_counter()

    def on_mem(i, t):
        n = i + 1
        if n in (10, 50, 100, args.memory_samples):
            mem[n] = rss_mib()

    render_indices(job, job.indices(), on_done=on_mem)
    print(f"memory over {args.memory_samples} samples in one process (128x72, 1 spp; "
          f"{(time.perf_counter() - t0) / args.memory_samples:.2f} s/sample):")
    for n, m in mem.items():
        print(f"  RSS after {n:4d} samples: {m:7.1f} MiB")
    if 10 in mem and args.memory_samples in mem:
        print(f"  growth 10 -> {args.memory_samples}: {100 * (mem[args.memory_samples] / mem[10] - 1):+.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--samples", type=int, default=12)
    ap.add_argument("--memory-samples", type=int, default=200)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--rows", action="store_true", help="also print every sample's timings")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="preset override, as in sim2real render")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        speed(args, Path(tmp))
        if not args.skip_memory:
            memory(args, Path(tmp))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
