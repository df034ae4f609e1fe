"""Commands for rendering and inspecting data sets: render, verify, preview, presets."""

from __future__ import annotations

import sys

import click

from ..errors import Sim2RealError


@click.command()
@click.option("--preset", default=None, help="preset name in scenes/ or a .toml file  [default: default]")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="output data-set folder")
@click.option("--count", required=True, type=int, help="number of samples (1 or more)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0), help="first sample index")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="render processes")
@click.option("--shard", default=None, metavar="I/N", help="render only indices with index % N == I")
@click.option("--set", "sets", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="override a preset field, e.g. --set render.samples=8 (repeatable)")
@click.option("--blender", default=None, metavar="PATH", help="render with this Blender binary instead of bpy")
@click.option("--blend", default=None, type=click.Path(dir_okay=False),
              help="render the labelled objects of this .blend instead of a generated scene")
@click.option("--preview/--no-preview", default=True, show_default=True, help="write preview.png when done")
def render(preset, out, count, seed, start, workers, shard, sets, blender, blend, preview):
    """Render a labelled data set (resumable: a rerun completes what is missing).

    Example: sim2real render --out data/sim --count 100 --workers 2
    """
    from .job import RenderJob, parse_set, parse_shard, run, run_with_blender
    from ..progress import Progress

    job = RenderJob(preset=preset or "default", out=out, count=count, seed=seed, start=start,
                    shard=parse_shard(shard), overrides=parse_set(sets))
    if blend:
        if blender:
            raise Sim2RealError("--blend with --blender: run  blender my.blend -b -P sim2real/render.py -- --out ...")
        from ..blender import require_bpy
        from .job import run_user_scene

        require_bpy()
        with Progress(len(job.indices()), "render", unit="samples") as bar:
            summary = run_user_scene(job, blend, preset, workers=workers, progress=bar)
        click.echo(f"rendered {summary['rendered']}, skipped {summary['skipped']} already done -> {out}", err=True)
        if preview:
            _render_preview(out)
        return
    job.config()  # validate before starting anything
    if blender:
        rc = run_with_blender(job, blender, workers)
        if rc:
            raise Sim2RealError(f"Blender exited with status {rc}")
    else:
        from ..blender import require_bpy

        require_bpy()
        with Progress(len(job.indices()), "render", unit="samples") as bar:
            summary = run(job, workers=workers, progress=bar)
        click.echo(f"rendered {summary['rendered']}, skipped {summary['skipped']} already done -> {out}", err=True)
    if preview:
        _render_preview(out)


@click.command()
@click.argument("dataset", type=click.Path())
@click.option("--quiet", is_flag=True, help="print only problems")
def verify(dataset, quiet):
    """Check a data set end to end; exit 1 naming each bad sample.

    Example: sim2real verify data/sim
    """
    from pathlib import Path

    from ..dataset.format import open_dataset
    from ..dataset.format import verify as verify_ds
    from ..progress import Progress

    try:
        n = len(open_dataset(dataset))
    except Sim2RealError:
        if not (Path(dataset) / "dataset.json").is_file():  # not a data set at all: wrong argument
            raise Sim2RealError(f"{dataset} is not a sim2real data set (no dataset.json); point verify at a "
                                f"folder written by 'sim2real render' or 'sim2real translate'") from None
        n = 0  # a damaged dataset.json: reported below as the data set's problem
    with Progress(n, "verify", unit="samples", enabled=not quiet and n > 0) as bar:
        bad = verify_ds(dataset, progress=bar)
    for sid, problems in bad.items():
        for p in problems:
            click.echo(f"{sid or dataset}: {p}")
    if bad:
        samples = len([sid for sid in bad if sid])
        whole = " (and problems with the data set itself, above)" if "" in bad else ""
        click.echo(f"{samples} bad of {n} samples in {dataset}{whole}", err=True)
        sys.exit(1)
    if not quiet:
        click.echo(f"ok: {n} samples in {dataset}")


def _render_preview(out) -> None:
    """The preview after a render; a shard that rendered nothing yet has nothing to show."""
    from ..dataset.format import open_dataset

    if len(open_dataset(out)) == 0:
        click.echo(f"no samples in {out} yet: no preview", err=True)
        return
    _write_preview(out, None, 6)


def _write_preview(dataset, out, rows):
    from pathlib import Path

    from ..dataset.format import open_dataset
    from ..io import atomic_path, write_png
    from ..dataset.preview import contact_sheet

    ds = open_dataset(dataset)
    if len(ds) == 0:
        raise Sim2RealError(f"{dataset} has no samples to preview")
    out = Path(out) if out else Path(dataset) / "preview.png"
    with atomic_path(out) as tmp:
        write_png(tmp, contact_sheet(ds, max_rows=rows))
    click.echo(f"preview -> {out}", err=True)
    return out


@click.command()
@click.argument("dataset", type=click.Path())
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="PNG path (default DATASET/preview.png)")
@click.option("--rows", default=8, show_default=True, type=click.IntRange(min=1), help="samples shown")
def preview(dataset, out, rows):
    """Write a contact sheet: image | segmentation overlay | depth | normals.

    Example: sim2real preview data/sim --rows 4
    """
    _write_preview(dataset, out, rows)


@click.command()
@click.option("--show", default=None, metavar="NAME", help="print one preset completed with every default, as TOML")
def presets(show):
    """List the scene presets in scenes/, or print one completed with every default.

    Example: sim2real presets --show default > scenes/mine.toml
    """
    from ..config import load_config, preset_names, to_toml

    if show:
        click.echo(to_toml(load_config(show)), nl=False)
        return
    for name in preset_names():
        click.echo(name)


@click.command()
def classes():
    """Print the class table (ids, names, colours)."""
    from ..classes import DEFAULT_TABLE

    for c in DEFAULT_TABLE:
        click.echo(f"{c.id:3d}  {c.name:16s} rgb{c.color}")


@click.command()
@click.option("--real", required=True, type=click.Path(), help="folder of real frames (.jpg/.png)")
@click.option("--masks", required=True, type=click.Path(), help="folder of their masks (<stem>.png, class values)")
@click.option("--map", "mapping", required=True, metavar="CLASS=VALUE,...",
              help="which mask values are which class, e.g. gallbladder=5,tool=6; background=0 fits the "
                   "tissues no other class names (liver, fat, wall, ligament) to the masks' unlabelled pixels")
@click.option("--preset", default="default", show_default=True, help="preset to start from")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="calibrated preset to write (.toml)")
@click.option("--samples", default=12, show_default=True, type=click.IntRange(min=1), help="renders per round")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=0), help="adjustment rounds")
@click.option("--size", default="160x90", show_default=True, metavar="WxH", help="render size of the rounds")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--real-limit", default=150, show_default=True, type=click.IntRange(min=1),
              help="real frames used at most (spread evenly)")
def calibrate(real, masks, mapping, preset, out, samples, rounds, size, seed, real_limit):
    """Fit a preset's colours and light to real frames; write it with a before/after report.

    Example: sim2real calibrate --real real/images --masks real/masks --map gallbladder=5,tool=6 --out scenes/mine.toml
    """
    from ..appearance.calibrate import CalibrateOptions
    from ..appearance.calibrate import calibrate as run_calibrate
    from ..segment.data import parse_mapping

    try:
        w, h = (int(x) for x in size.lower().split("x"))
        if w < 8 or h < 8:
            raise ValueError
    except ValueError:
        raise Sim2RealError(f"--size {size!r}: expected WxH with both at least 8, e.g. 160x90") from None
    opts = CalibrateOptions(real=real, masks=masks, mapping=parse_mapping(mapping, "--map", True), out=out,
                            preset=preset, samples=samples, rounds=rounds, size=(w, h), seed=seed,
                            real_limit=real_limit)
    opts.check()
    from ..config import load_config

    load_config(preset)  # a bad preset fails before anything renders
    from ..blender import require_bpy

    require_bpy()
    rep = run_calibrate(opts, log=lambda s: click.echo(s, err=True))
    for c, v in rep["after"]["classes"].items():
        click.echo(f"{c}: ΔE76 {rep['before']['classes'][c]['delta_e76']} -> {v['delta_e76']}")
    click.echo(f"clipped: {100 * rep['before']['clipped_share_render']:.2f} % -> "
               f"{100 * rep['after']['clipped_share_render']:.2f} % (real {100 * rep['after']['clipped_share_real']:.2f} %)")
    click.echo(f"preset -> {out}; report -> {out[:-5]}.report.md")


commands = [render, verify, preview, presets, classes, calibrate]
