"""Commands of the downstream segmentation proof: ``segment train|eval|consistency`` and
``experiment``. torch is imported inside the commands so ``sim2real --help`` stays fast."""

from __future__ import annotations

import click

from ..errors import Sim2RealError


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise Sim2RealError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 160x96") from None
    return w, h


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def _data_options(f):
    f = click.option("--exclude-videos", default=None, help="Comma list of videos to leave out (real folders).")(f)
    f = click.option("--videos", default=None, help="Comma list of videos to use (real folders: <video>_<frame> "
                                                     "stems), or @OUT/split.json of 'sim2real experiment'.")(f)
    f = click.option("--ignore", default="255", show_default=True, help="Mask values not scored (comma list).")(f)
    f = click.option("--sim-map", default=None,
                     help="Data-set classes per target, e.g. tool=tool_shaft+tool_tip (default: by name, tool=tool_*).")(f)
    f = click.option("--real-map", default=None,
                     help="Mask values per class for real image+mask folders, e.g. gallbladder=5,tool=6.")(f)
    return f


def _items(data, classes, real_map, sim_map, ignore, videos, exclude_videos):
    from .data import load_items, parse_mapping, parse_videos

    try:
        ignore_vals = tuple(int(v) for v in ignore.split(",") if v.strip())
    except ValueError:
        raise Sim2RealError(f"--ignore {ignore!r}: expected integers, e.g. 255") from None
    return load_items(list(data), list(classes),
                      real_map=parse_mapping(real_map, "--real-map", True),
                      sim_map=parse_mapping(sim_map, "--sim-map", False), ignore=ignore_vals,
                      videos=parse_videos(videos), exclude_videos=parse_videos(exclude_videos))


@click.group("segment")
def segment():
    """Train and score a U-Net segmenter on rendered, translated or real labelled images."""


@segment.command("train")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(),
              help="A sim2real data set (rendered/translated) or a real folder (images/ + masks/); repeatable.")
@click.option("--out", required=True, type=click.Path(), help="Run folder (checkpoint.pt, train.json).")
@click.option("--classes", default="gallbladder,tool", show_default=True, help="Classes to segment, by name.")
@_data_options
@click.option("--size", default="160x96", show_default=True, help="Training resolution WIDTHxHEIGHT (multiples of 16).")
@click.option("--steps", type=int, default=600, show_default=True)
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--base", type=int, default=16, show_default=True, help="U-Net channels at full resolution.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-augment", is_flag=True, help="Train without augmentation.")
@click.option("--checkpoint-every", type=int, default=100, show_default=True)
@click.option("--init", type=click.Path(), default=None, help="Fine-tune: start from this segmenter checkpoint.")
@click.option("--resume", is_flag=True, help="Continue the run in --out where it stopped.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.pass_context
def train_cmd(ctx, data, out, classes, real_map, sim_map, ignore, videos, exclude_videos, size, steps, batch, lr,
              base, seed, no_augment, checkpoint_every, init, resume, device, threads):
    """Train a segmenter (or fine-tune one with --init)."""
    from click.core import ParameterSource

    from .data import parse_classes
    from .train import TrainConfig, train

    _threads(threads)
    names = parse_classes(classes)
    if init is not None and ctx.get_parameter_source("classes") != ParameterSource.COMMANDLINE:
        from .checkpoint import load_checkpoint

        names = list(load_checkpoint(init)["classes"])  # fine-tuning keeps the checkpoint's classes
    items = _items(data, names, real_map, sim_map, ignore, videos, exclude_videos)
    cfg = TrainConfig(classes=tuple(names), size=_size(size), steps=steps, batch=batch, lr=lr, base=base,
                      seed=seed, augment=not no_augment, checkpoint_every=checkpoint_every)
    overrides = None
    if resume:
        # only what the user typed may override the stored config
        keymap = {"steps": "steps", "batch": "batch", "lr": "lr", "base": "base", "seed": "seed",
                  "checkpoint_every": "checkpoint_every", "size": "size", "no_augment": "augment"}
        overrides = {keymap[p]: getattr(cfg, keymap[p]) for p in keymap
                     if ctx.get_parameter_source(p) == ParameterSource.COMMANDLINE}
    click.echo(f"training on {len(items)} images ({len({(i.source, i.video) for i in items})} videos/groups), "
               f"classes {','.join(names)}", err=True)
    try:
        summary = train(items, out, cfg, init=init, resume=resume, overrides=overrides, device=device)
    except KeyboardInterrupt:
        click.echo(f"interrupted; checkpoint saved in {out}; continue with the same command plus --resume", err=True)
        raise SystemExit(130)
    click.echo(f"done: step {summary['step']}/{summary['steps']}, loss {summary['final_loss']:.4f}, "
               f"{summary['wall_s']:.0f} s; checkpoint {summary['checkpoint']}")


@segment.command("eval")
@click.option("--checkpoint", required=True, type=click.Path(), help="Segmenter checkpoint (or its run folder).")
@click.option("--data", "data", multiple=True, required=True, type=click.Path(),
              help="Labelled images to score: real folder(s) or sim2real data set(s); repeatable.")
@_data_options
@click.option("--out", type=click.Path(), default=None, help="Folder for eval.json, eval.txt and overlays/.")
@click.option("--overlays", type=int, default=4, show_default=True, help="Best and worst images to draw.")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, default=None)
def eval_cmd(checkpoint, data, real_map, sim_map, ignore, videos, exclude_videos, out, overlays, batch, device, threads):
    """Per-class Dice/IoU, per image and per video, with best/worst overlays."""
    from ..progress import Progress
    from .evaluate import evaluate, format_table, write_overlays, write_report
    from .predict import Segmenter

    _threads(threads)
    seg = Segmenter.load(checkpoint, device)
    items = _items(data, seg.classes, real_map, sim_map, ignore, videos, exclude_videos)
    with Progress(len(items), "segment eval", "img") as bar:
        report = evaluate(seg, items, batch, bar)
    if out:
        if overlays > 0:
            report["overlays"] = write_overlays(seg, items, report, f"{out}/overlays", overlays)
        write_report(report, out)
    click.echo(format_table(report))


@segment.command("consistency")
@click.option("--checkpoint", required=True, type=click.Path(), help="Segmenter trained on real labelled frames.")
@click.option("--data", required=True, type=click.Path(), help="A translated (or rendered) sim2real data set.")
@click.option("--sim-map", default=None, help="Data-set classes per target, e.g. tool=tool_shaft+tool_tip.")
@click.option("--out", type=click.Path(), default=None, help="JSON file for the per-variant scores.")
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, default=None)
def consistency_cmd(checkpoint, data, sim_map, out, device, threads):
    """Per-variant Dice of a real-trained segmenter against the renders' own labels."""
    from ..dataset.format import open_dataset
    from ..io import write_json_atomic
    from ..progress import Progress
    from .consistency import consistency_scores, summarise_consistency
    from .data import parse_mapping

    _threads(threads)
    ds = open_dataset(data)
    with Progress(len(ds), "consistency", "img") as bar:
        scores = consistency_scores(checkpoint, ds, device, parse_mapping(sim_map, "--sim-map", False), progress=bar)
    summary = summarise_consistency(scores)
    if out:
        write_json_atomic(out, {"checkpoint": str(checkpoint), "data": str(data), "mean": summary,
                                "per_sample": scores})
    click.echo("mean Dice: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))


@click.command("experiment")
@click.option("--real", required=True, type=click.Path(), help="Real labelled folder (images/ + masks/).")
@click.option("--real-map", default="gallbladder=5,tool=6", show_default=True)
@click.option("--render", type=click.Path(), default=None, help="Rendered data set for arm (a).")
@click.option("--render2", type=click.Path(), default=None,
              help="Renders of a second preset (e.g. scenes/randomized.toml) for arm (r).")
@click.option("--translated", type=click.Path(), default=None, help="Translated data set for arms (b) and (d).")
@click.option("--colour", type=click.Path(), default=None,
              help="Colour-transferred data set ('translate --method colour') for arm (e).")
@click.option("--fourier", type=click.Path(), default=None,
              help="Fourier-transferred data set ('translate --method fourier') for arm (f).")
@click.option("--out", required=True, type=click.Path(), help="Experiment folder (one sub-folder per arm, report.*).")
@click.option("--classes", default="gallbladder,tool", show_default=True,
              help="Classes to segment, by name (render class names; 'tool' = tool_shaft + tool_tip); "
                   "each needs a --real-map entry.")
@click.option("--arms", default="a,r,e,f,b,c,d", show_default=True, help="Arms to run now; finished arms are reused.")
@click.option("--train-videos", type=int, default=4, show_default=True, help="Real videos labelled for (c)/(d).")
@click.option("--split-seed", type=int, default=0, show_default=True)
@click.option("--seeds", default="0", show_default=True, help="Training seeds (comma list); results are averaged.")
@click.option("--size", default="160x96", show_default=True)
@click.option("--steps", type=int, default=600, show_default=True, help="Steps of arms (a), (b), (c).")
@click.option("--finetune-steps", type=int, default=None, help="Steps of (d)'s fine-tuning (default: --steps).")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--base", type=int, default=16, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--realism/--no-realism", default=True, show_default=True,
              help="Two-sample accuracy of each arm's training set against the held-out real frames.")
@click.option("--curve", default=None, metavar="LIST",
              help="Label-efficiency curve: real labels of this many training videos (nested subsets), e.g. 1,2,4,8; "
                   "each from scratch and fine-tuned from --pretrain-arm.")
@click.option("--pretrain-arm", type=click.Choice(["a", "r", "b", "e", "f"]), default=None,
              help="The curve's pre-training arm (default: the zero-label arm with the best mean Dice run so far).")
def experiment_cmd(real, real_map, render, render2, translated, colour, fourier, out, classes, arms, train_videos, split_seed, seeds,
                   size, steps, finetune_steps, batch, base, device, threads, realism, curve, pretrain_arm):
    """The paper's comparison: (a) renders, (e) colour / (f) Fourier transfer, (b) translated, (c) few real videos,
    (d) (b) then (c); with --curve, real-label counts with and without pre-training."""
    from .data import parse_mapping
    from .experiment import ExperimentConfig, run_experiment

    _threads(threads)
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise Sim2RealError(f"--seeds {seeds!r}: expected integers, e.g. 0,1") from None
    try:
        curve_list = [int(s) for s in (curve or "").split(",") if s.strip()]
    except ValueError:
        raise Sim2RealError(f"--curve {curve!r}: expected numbers of videos, e.g. 1,2,4,8") from None
    class_list = tuple(c.strip() for c in classes.split(",") if c.strip())
    mapped = parse_mapping(real_map, "--real-map", True) or {}
    missing = [c for c in class_list if c not in mapped]
    if not class_list or missing:
        raise Sim2RealError(f"--classes {classes!r}: {', '.join(missing) or 'no class'} has no --real-map entry; "
                            f"add e.g. --real-map {real_map},{(missing or ['gallbladder'])[0]}=<mask value>")
    cfg = ExperimentConfig(real=real, real_map=real_map, render=render, render2=render2, translated=translated,
                           colour=colour, fourier=fourier, classes=class_list, train_videos=train_videos, split_seed=split_seed, seeds=tuple(seed_list),
                           size=_size(size), steps=steps, finetune_steps=finetune_steps or steps,
                           batch=batch, base=base, curve=tuple(curve_list), pretrain_arm=pretrain_arm)
    arm_list = [a.strip() for a in arms.split(",") if a.strip()]
    report = run_experiment(cfg, out, arm_list, device=device, log=lambda m: click.echo(m, err=True),
                            realism=realism)
    click.echo(report["markdown"])


commands: list = [segment, experiment_cmd]
