"""Commands of the translator (train, export, translate, evaluate).

torch is imported inside the command functions so ``sim2real --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import Sim2RealError


@click.command("train")
@click.option("--sim", "sim", required=True, type=click.Path(path_type=Path),
              help="Rendered data set (from 'sim2real render'); only its images are used.")
@click.option("--real", "real", required=True, multiple=True, type=click.Path(path_type=Path),
              help="Folder (searched recursively) or file of real frames or videos; repeatable.")
@click.option("--videos", default=None, metavar="LIST|@SPLIT",
              help="Use only these real videos (<video>_<frame> stems; comma list), or @OUT/split.json of "
                   "'sim2real experiment' (its training videos): keep held-out videos unseen.")
@click.option("--exclude-videos", default=None, metavar="LIST", help="Leave these real videos out (comma list).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Run folder.")
@click.option("--config", "config", default=None,
              help="Preset name (bilateral, small, paper, gpu, gpu8) or a TOML file; default: bilateral.")
@click.option("--set", "sets", multiple=True, metavar="SECTION.FIELD=VALUE",
              help="Override one config field of a new run, e.g. --set loss.nce=0 (value parsed as TOML); repeatable.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--max-iter", type=int, default=None, help="Stop at this step (overrides train.max_iter).")
@click.option("--seed", type=int, default=None, help="Overrides train.seed (new runs only).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32"]), default=None,
              help="Mixed precision (overrides train.precision, default auto): auto = bf16 autocast on a CUDA GPU "
                   "with bf16 and fp32 on the CPU; bf16 = bf16 autocast on any device, the CPU too (slower there "
                   "unless it has bf16 instructions); fp32 = none. Losses are fp32 in every case.")
@click.option("--compile", "compile_", is_flag=True, default=None, help="torch.compile the networks.")
@click.option("--workers", type=int, default=None,
              help="Processes preparing batches ahead (overrides train.workers, default 2; 0 = in the training "
                   "loop). Any value trains the same weights, so it may change on --resume.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
def train_cmd(sim, real, videos, exclude_videos, out, config, sets, resume, max_iter, seed, device, precision,
              compile_, workers, threads):
    """Train the unpaired sim -> real translator (under torchrun: one translator across N processes)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from .distributed import leave

    device, rank, world = _init_distributed(device)
    finished = False
    try:
        _train(sim, real, _video_filter(videos, exclude_videos), out, config, sets, resume, max_iter, seed, device,
               precision, compile_, rank, world, workers)
        finished = True
    finally:
        leave(world, finished)


def _init_distributed(device: str) -> tuple[str, int, int]:
    """Join the torchrun job this process belongs to, if any: (device, rank, world size).

    One process per GPU (cuda:LOCAL_RANK, NCCL) when CUDA is used; gloo on the CPU.
    """
    import os

    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device, 0, 1
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device != "cpu" and torch.cuda.is_available()
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise Sim2RealError("--device cuda requested but PyTorch sees no CUDA GPU; use --device cpu")
    if cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    dist.init_process_group("nccl" if cuda else "gloo")
    return device, dist.get_rank(), dist.get_world_size()


def _video_filter(videos, exclude_videos) -> dict:
    from ..io.videos import parse_videos

    return {"videos": parse_videos(videos, "--videos"),
            "exclude_videos": parse_videos(exclude_videos, "--exclude-videos")}


def _train(sim, real, video_filter, out, config, sets, resume, max_iter, seed, device, precision, compile_, rank,
           world, workers=None):
    from ..progress import Progress
    from .checkpoint import CHECKPOINT_NAME, load_checkpoint
    from .config import DEFAULT_PRESET, TranslatorConfig, load_config
    from .data import RealFrames, SimImages, fit_to_renders
    from .trainer import Trainer

    say = (lambda msg: click.echo(msg, err=True)) if rank == 0 else (lambda msg: None)
    ck_path = out / CHECKPOINT_NAME
    overrides: dict = {"train": {}}
    if precision is not None:
        overrides["train"]["precision"] = precision
    if compile_:
        overrides["train"]["compile"] = True
    if workers is not None:
        overrides["train"]["workers"] = workers
    if resume and sets:
        raise Sim2RealError("--set changes the config of a new run; a resumed run keeps its config (drop --set)")
    if resume:
        if not ck_path.is_file():
            raise Sim2RealError(f"--resume: {ck_path} not found; start a new run without --resume")
        ck = load_checkpoint(ck_path, kinds=("train",))
        if int(ck.get("world_size", 1)) != world:
            raise Sim2RealError(f"--resume: {ck_path} was trained by {ck.get('world_size', 1)} process(es), this job "
                                f"has {world}; resume with the same number (torchrun --nproc-per-node "
                                f"{ck.get('world_size', 1)}) so the run continues exactly")
        stored = TranslatorConfig.from_dict(ck["config"])
        given = load_config(config) if config is not None else None
        if given is not None and given.data.native_short == 0:
            given.data.native_short = stored.data.native_short  # filled in when the run started
        if given is not None and list(given.data.crop) == [0, 0]:
            given.data.crop = stored.data.crop  # likewise
        for key in ("workers", "prefetch"):  # how batches are prepared: no effect on the weights
            if given is not None:
                setattr(given.train, key, getattr(stored.train, key))
        if given is not None and given.to_dict() != stored.to_dict():
            raise Sim2RealError(f"--config {config} differs from the config stored in {ck_path}; a resumed run "
                                f"keeps its config (drop --config, or start a new --out)")
        if seed is not None and seed != ck["config"]["train"]["seed"]:
            raise Sim2RealError(f"--seed {seed} differs from the run's seed {ck['config']['train']['seed']}; "
                                f"drop --seed when resuming")
        cfg = TranslatorConfig.from_dict({**ck["config"], "train": {**ck["config"]["train"], **overrides["train"]}},
                                         source=f"checkpoint {ck_path}")
    else:
        if ck_path.is_file():
            raise Sim2RealError(f"{out} already holds a run ({ck_path}); pass --resume to continue it "
                                f"or choose another --out")
        if seed is not None:
            overrides["train"]["seed"] = seed
        from ..rendering.job import parse_set

        for key, value in parse_set(sets).items():
            section, _, field = key.partition(".")
            overrides.setdefault(section, {})[field] = value
        cfg = load_config(config or DEFAULT_PRESET, overrides)
        ck = None
    sim_images = SimImages(sim)
    native, fitted = cfg.data.load_size == 0 and cfg.data.native_short == 0, list(cfg.data.crop) == [0, 0]
    fit_to_renders(cfg, sim_images)  # before any work: a crop larger than the renders is an error
    real_frames = RealFrames(real, cfg.data, on_video=lambda p, n: say(f"video {p}: {n} frames"), **video_filter)
    if native:  # native scale: real frames meet the renders' scale
        say(f"native scale: renders as they are, real frames resized to short side {cfg.data.native_short}")
    if fitted:
        say(f"data.crop [0, 0]: training crop {cfg.data.crop[0]}x{cfg.data.crop[1]} (h x w), the largest inside "
            f"the renders")
    say(f"sim: {len(sim_images)} images from {sim}; real: {len(real_frames)} frames of "
        f"{len(real_frames.videos())} videos")
    trainer = Trainer(cfg, sim_images, real_frames, out, device)
    if ck is not None:
        trainer.load_state(ck)
        say(f"resumed {ck_path} at step {trainer.step}")
    total = cfg.train.max_iter if max_iter is None else max_iter
    if trainer.step >= total:
        say(f"already at step {trainer.step} >= {total}; nothing to do")
        return
    procs = f", {world} processes x batch {cfg.train.batch_size}" if world > 1 else ""
    say(f"device {trainer.device}, precision {trainer.precision}, compile {cfg.train.compile}, "
        f"{cfg.train.workers} batch workers{procs}; run folder {out}")
    with Progress(total, "train", "it", initial=trainer.step, enabled=rank == 0) as bar:
        status = trainer.fit(total, progress=bar)
    if status == "interrupted":
        say(f"interrupted at step {trainer.step}; checkpoint saved to {ck_path}; continue with --resume")
        sys.exit(130)
    say(f"done: step {trainer.step}, checkpoint {ck_path}")


@click.command("export")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Output file (default: RUN/translator.pt).")
def export_cmd(run, out):
    """Write a small inference-only checkpoint (EMA generator + config) of a run."""
    from .checkpoint import CHECKPOINT_NAME
    from .inference import export

    src = run / CHECKPOINT_NAME if run.is_dir() else run
    path = export(src, out)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@click.command("translate")
@click.option("--checkpoint", default=None, type=click.Path(path_type=Path),
              help="Run folder, its checkpoint.pt, or an exported translator.pt (--method translator).")
@click.option("--method", type=click.Choice(["translator", "colour", "fourier"]), default="translator",
              show_default=True, help="translator: the trained network; colour: no training, CIELAB mean/std of "
              "random --real frames; fourier: no training, their low-frequency Fourier amplitude (FDA).")
@click.option("--real", "real", multiple=True, type=click.Path(path_type=Path),
              help="Real frames (files or folders) whose colours --method colour/fourier takes; repeatable.")
@click.option("--videos", default=None, metavar="LIST|@SPLIT",
              help="--method colour/fourier: only these real videos (comma list, or @OUT/split.json of "
                   "'sim2real experiment').")
@click.option("--exclude-videos", default=None, metavar="LIST",
              help="--method colour/fourier: leave these real videos out.")
@click.option("--beta", type=float, default=None,
              help="--method fourier: half-width of the swapped low band as a fraction of the short side "
                   "(default 0.05; the paper uses 0.01-0.09; 0 = the render unchanged).")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Rendered data set to translate.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output data set folder.")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Variants per render.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random style codes.")
@click.option("--synchronized", is_flag=True, help="The same K style codes for every render.")
@click.option("--style-from", "style_from", multiple=True, type=click.Path(path_type=Path),
              help="Real reference images (files or folders) whose encoded styles are used; repeatable.")
@click.option("--batch", type=int, default=8, show_default=True, help="Renders per batch (x K variants).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto", show_default=True,
              help="auto = bf16 autocast on a CUDA GPU with bf16, fp32 on the CPU; bf16 = bf16 on any device; "
                   "fp32 = none.")
@click.option("--min-structure", type=float, default=None,
              help="Redraw variants whose grayscale MS-SSIM to the render is below this.")
@click.option("--max-redraws", type=int, default=5, show_default=True, help="Bound on redraws per variant.")
@click.option("--keep-fov/--no-keep-fov", default=True, show_default=True,
              help="Keep the render's black border (outside the field of view, labelled background) black.")
@click.option("--segmenter", type=click.Path(path_type=Path), default=None,
              help="Segmenter checkpoint trained on real frames: record each variant's semantic consistency.")
@click.option("--min-consistency", type=float, default=None,
              help="Redraw variants whose consistency (mean Dice vs the render's labels) is below this.")
@click.option("--shard", default=None, metavar="I/N",
              help="Translate only renders whose position % N == I (one process per GPU or array task).")
@click.option("--io-threads", type=int, default=2, show_default=True,
              help="Threads reading renders and writing variants while the model works (0 = none).")
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
def translate_cmd(checkpoint, method, real, videos, exclude_videos, beta, data, out, k, seed, synchronized, style_from,
                  batch, device, precision, min_structure, max_redraws, keep_fov, segmenter, min_consistency, shard,
                  io_threads, threads):
    """Translate every render into K realistic variants; labels are carried over byte for byte."""
    import torch

    from ..dataset.format import open_renders
    from ..rendering.job import parse_shard
    from ..progress import Progress
    from .inference import TranslateOptions, run_translation
    from .device import pick_device

    if threads:
        torch.set_num_threads(threads)
    if beta is not None and method != "fourier":
        raise Sim2RealError(f"--beta is the band of --method fourier; drop it for --method {method}")
    if method in ("colour", "fourier"):
        _colour(data, real, _video_filter(videos, exclude_videos), out, k, seed, parse_shard(shard), method, beta)
        return
    if videos is not None or exclude_videos is not None:
        raise Sim2RealError("--videos/--exclude-videos select real frames for --method colour/fourier; the "
                            "translator's real videos are chosen when it is trained ('sim2real train --videos')")
    if checkpoint is None:
        raise Sim2RealError("--checkpoint is required with --method translator (or use --method colour --real DIR)")
    opts = TranslateOptions(checkpoint, data, out, k=k, seed=seed, synchronized=synchronized,
                            style_from=list(style_from) or None, batch=batch, device=device,
                            precision=precision, min_structure=min_structure, max_redraws=max_redraws,
                            keep_fov=keep_fov, segmenter=segmenter, min_consistency=min_consistency,
                            shard=parse_shard(shard), io_threads=io_threads)
    opts.check(has_scorer=segmenter is not None)
    src = open_renders(data)
    scorer = None
    if segmenter is not None:
        # The command layer joins the two packages; translate/inference.py never imports segment/.
        from ..segment.consistency import ConsistencyScorer

        scorer = ConsistencyScorer(segmenter, src.classes, device=str(pick_device(device)))
    i, n = opts.shard
    mine = len(range(i, len(src), n))
    with Progress(mine * k, "translate" if n == 1 else f"translate {i}/{n}", "variants") as bar:
        summary = run_translation(opts, scorer, progress=bar)
    below_c = f", {summary['below_min_consistency']} below --min-consistency" if min_consistency is not None else ""
    click.echo(f"{summary['variants_written']} variants written, {summary['variants_skipped']} already there; "
               f"{summary['redraws']} redraws, {summary['below_min_structure']} below --min-structure{below_c}; "
               f"labels: {summary['links']} hard links, {summary['copies']} copies -> {out}")


def _colour(data, real, video_filter, out, k, seed, shard, method="colour", beta=None):
    """--method colour / fourier: the no-training baselines (see :mod:`.colour`, :mod:`.fourier`)."""
    from ..dataset.format import open_renders
    from ..progress import Progress
    from .colour import RealColours, colour_dataset
    from .fourier import DEFAULT_BETA, RealSpectra, check_beta, fourier_dataset

    if not real:
        raise Sim2RealError(f"--method {method} needs --real DIR (real frames whose colours the renders take)")
    if k < 1:
        raise Sim2RealError(f"-k must be >= 1, got {k}")
    beta = check_beta(DEFAULT_BETA if beta is None else beta)
    i, n = shard
    mine = len(range(i, len(open_renders(data, f"{method}-transfer")), n))  # checked before reading real frames
    refs = (RealSpectra if method == "fourier" else RealColours)(list(real), **video_filter)
    with Progress(mine * k, method if n == 1 else f"{method} {i}/{n}", "variants") as bar:
        if method == "fourier":
            summary = fourier_dataset(data, refs, out, k=k, seed=seed, beta=beta, progress=bar, shard=shard)
        else:
            summary = colour_dataset(data, refs, out, k=k, seed=seed, progress=bar, shard=shard)
    click.echo(f"{summary['variants_written']} variants written, {summary['variants_skipped']} already there; "
               f"labels: {summary['links']} hard links, {summary['copies']} copies -> {out}")


@click.command("evaluate")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Translated data set.")
@click.option("--real", required=True, multiple=True, type=click.Path(path_type=Path),
              help="Folder or file of real frames (held out from training if you can); repeatable.")
@click.option("--videos", default=None, metavar="LIST", help="Only these real videos (comma list).")
@click.option("--exclude-videos", default=None, metavar="LIST|@SPLIT",
              help="Leave these real videos out (comma list, or @OUT/split.json: its training videos).")
@click.option("--source", type=click.Path(path_type=Path), default=None,
              help="The renders it was translated from (default: the path recorded in the data set).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="JSON report (default: DATA/evaluation.json).")
@click.option("--inception-weights", type=click.Path(path_type=Path), default=None,
              help="Inception v3 weights (torch-fidelity format) to also compute FID/KID.")
@click.option("--epochs", type=int, default=15, show_default=True, help="Two-sample classifier epochs.")
@click.option("--classifier-seeds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Two-sample classifiers (seeds) averaged per test; one alone varies by ~0.05.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--segmenter", type=click.Path(path_type=Path), default=None,
              help="Segmenter trained on real frames: semantic consistency of variants and renders.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch.")
def evaluate_cmd(data, real, videos, exclude_videos, source, out, inception_weights, epochs, classifier_seeds, seed,
                 device, segmenter, threads):
    """Score structure, realism (two-sample test vs the untranslated baseline) and diversity."""
    import torch

    from ..dataset.format import open_dataset
    from ..io import write_json_atomic
    from ..progress import Progress
    from .evaluate import evaluate, format_report
    from .device import pick_device

    if threads:
        torch.set_num_threads(threads)
    ds = open_dataset(data)
    n_src = len({s.split("_style_")[0] for s in ds.ids()})
    with Progress(n_src, "evaluate", "renders") as bar:
        report = evaluate(data, list(real), source=source, seed=seed, device=pick_device(device), epochs=epochs,
                          inception_weights=inception_weights, progress=bar, classifier_seeds=classifier_seeds,
                          **_video_filter(videos, exclude_videos))
    if segmenter is not None:
        report["consistency"] = semantic_consistency(segmenter, data, report["source"], device)
    out = out or data / "evaluation.json"
    write_json_atomic(out, report)
    click.echo(format_report(report))
    click.echo(f"report: {out}")


def semantic_consistency(segmenter, translated, source, device) -> dict:
    """Dice of a real-trained segmenter against the renders' own labels, per variant and
    per class, for the translations and (baseline) the untranslated renders."""
    from ..progress import Progress
    from ..segment.consistency import consistency_scores, summarise_consistency

    out = {"segmenter": str(segmenter)}
    for name, path in (("translated", translated), ("untranslated", source)):
        from ..dataset.format import open_dataset

        with Progress(len(open_dataset(path)), f"consistency ({name})", "images") as bar:
            scores = consistency_scores(segmenter, path, device=device, progress=bar)
        out[name] = summarise_consistency(scores)
        if name == "translated":
            out["per_variant"] = scores
    return out


commands: list = [train_cmd, export_cmd, translate_cmd, evaluate_cmd]
