"""The render job: one implementation behind ``sim2real render``, ``--workers``,
``--shard`` and the headless ``blender -b -P sim2real/render.py`` script.

Samples are independent: sample ``i`` is drawn from (config, seed, i) alone, so any
split of the indices over processes or machines gives the same data set, and a rerun
renders only what is missing.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..config import class_table, fingerprint, load_config
from ..dataset.format import DatasetWriter, sample_id, write_render_files
from ..errors import Sim2RealError, one_line


@dataclass
class RenderJob:
    """What to render: a preset, where, which indices."""

    preset: str | None
    out: str
    count: int
    seed: int = 0
    start: int = 0
    shard: tuple[int, int] = (0, 1)  # (i, n): this job renders indices with index % n == i
    overrides: dict | None = None
    extra: dict | None = None  # recorded in the config (e.g. a user scene's labels): a rerun with others is refused

    def __post_init__(self):
        if self.count < 1:
            raise Sim2RealError(f"--count {self.count}: nothing to render; give --count 1 or more")
        if self.start < 0:
            raise Sim2RealError(f"--start {self.start}: sample indices start at 0")

    def config(self) -> dict:
        cfg = load_config(self.preset, self.overrides)
        cfg.update(self.extra or {})
        return cfg

    def indices(self) -> list[int]:
        i, n = self.shard
        return [k for k in range(self.start, self.start + self.count) if k % n == i]


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 1)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise Sim2RealError(f"--shard {text!r}: expected i/n, e.g. 0/4 (the first of four shards)") from None
    if n < 1 or not 0 <= i < n:
        raise Sim2RealError(f"--shard {text}: need 0 <= i < n")
    return (i, n)


def open_writer(job: RenderJob, cfg: dict) -> DatasetWriter:
    table = class_table(cfg)
    info = {"kind": "render", "classes": table.to_json(), "config": cfg, "seed": job.seed}
    return DatasetWriter(job.out, info, fingerprint=fingerprint(cfg, seed=job.seed))


def sample_files(d: Path, sid: str, desc, arrays: dict, table, timings: dict, engine_version: str) -> None:
    """Write one rendered sample into folder ``d``: its meta, then the data-set writer's files."""
    from ..imaging.postprocess import sample_meta

    meta = sample_meta(desc, arrays, table, {"id": sid, **desc.meta})
    meta["render"]["blender_version"] = engine_version
    meta["render"]["seconds"] = {k: round(v, 4) for k, v in timings.items()}
    write_render_files(d, arrays, meta)


def render_indices(job: RenderJob, indices: list[int], on_done=None, threads: int | None = None,
                   sampler=None, renderer=None, cfg: dict | None = None, writer: DatasetWriter | None = None) -> int:
    """Render ``indices`` in this process (needs bpy); returns how many were rendered.

    ``sampler`` ((seed, index) -> SceneDescription) and ``renderer`` (a BlenderRenderer)
    default to the preset's; :func:`run_user_scene` passes the open file's. ``cfg`` and
    ``writer`` (from :func:`plan`) are loaded and opened here when not given.
    """
    from ..blender.passes import blender_version_string
    from ..blender.renderer import BlenderRenderer
    from ..scene.sampler import Sampler

    if cfg is None:
        cfg = job.config()
    writer = writer or open_writer(job, cfg)
    if threads:  # after the writer: the thread count does not change the samples
        cfg = {**cfg, "render": {**cfg["render"], "threads": threads}}
    table = class_table(cfg)
    sampler = sampler or Sampler(cfg)
    renderer = renderer or BlenderRenderer()
    version = blender_version_string()
    done = 0
    try:
        for idx in indices:
            sid = sample_id(idx)
            if writer.has(sid):
                continue
            t0 = time.perf_counter()
            desc = sampler(job.seed, idx)
            t1 = time.perf_counter()
            with writer.write_sample(sid) as d:  # raw passes and outputs land in a temp folder
                arrays, timings = renderer.render(desc, d)
                t2 = time.perf_counter()
                timings = {"sample_s": t1 - t0, **timings}
                sample_files(d, sid, desc, arrays, table, timings, version)
                timings["write_s"] = time.perf_counter() - t2
            done += 1
            if on_done is not None:
                on_done(idx, timings)
    finally:
        renderer.close()
    return done


PARENT_ENV = "SIM2REAL_PARENT_PID"  # set for the Blender processes of run_with_blender


def die_with_parent(parent_pid: int) -> None:
    """End this process as soon as ``parent_pid`` dies, even by ``kill -9``.

    A render worker outliving its parent would go on rendering, unseen, while a rerun
    renders the same samples again. On Linux the kernel kills us with the parent
    (``PR_SET_PDEATHSIG``); elsewhere, and as a second line, a thread watches the parent:
    multiprocessing's parent sentinel in a worker, the parent pid in a Blender process.
    """
    import sys
    import threading

    direct = os.getppid() == parent_pid
    if direct and sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    parent = mp.parent_process()
    if parent is not None and parent.pid == parent_pid:
        from multiprocessing.connection import wait

        def gone() -> None:
            wait([parent.sentinel])  # ready when the parent's end of the pipe closes
    elif os.name == "posix":
        def gone() -> None:
            while True:
                time.sleep(1.0)
                if (direct and os.getppid() != parent_pid) or not _alive(parent_pid):
                    return
    else:
        return
    if (direct and os.getppid() != parent_pid) or not _alive(parent_pid):  # died before we watched
        os._exit(1)

    def watch() -> None:
        gone()
        os._exit(1)

    threading.Thread(target=watch, name="sim2real-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker(job: RenderJob, indices: list[int], threads: int, queue, drop_paths: list[str],
            parent_pid: int | None = None) -> None:
    import signal
    import sys

    # Ctrl-C in a terminal reaches every process of the group: the parent handles it (one
    # line, exit 130) and its workers end with it, so they ignore it rather than each
    # printing a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        die_with_parent(parent_pid)
    # A parent that already imported bpy has Blender's script folders on sys.path; spawn
    # copies them, and their pure-Python `bpy` package would shadow the compiled module.
    sys.path[:] = [p for p in sys.path if p not in set(drop_paths)]
    try:
        render_indices(job, indices, on_done=lambda i, t: queue.put(("done", i)), threads=threads)
        queue.put(("exit", None))
    except Sim2RealError as exc:
        queue.put(("error", one_line(exc)))
    except BaseException as exc:  # report, never hang the parent
        import traceback

        traceback.print_exc()  # the details go to this worker's stderr; the parent gets one line
        queue.put(("error", one_line(exc, with_type=True)))


def plan(job: RenderJob, cfg: dict, progress=None) -> tuple[list[int], dict, DatasetWriter]:
    """Open the output folder for ``job`` once; its missing indices, a summary to fill, the writer."""
    writer = open_writer(job, cfg)
    todo = [i for i in job.indices() if not writer.has(sample_id(i))]
    summary = {"requested": len(job.indices()), "skipped": len(job.indices()) - len(todo), "rendered": 0}
    if progress is not None:
        progress.total = len(todo)
    return todo, summary, writer


def run(job: RenderJob, workers: int = 1, progress=None, sampler=None, renderer=None) -> dict:
    """Render the job's missing samples, in ``workers`` processes; returns a summary.

    ``progress`` is an object with ``update(n)`` (e.g. :class:`sim2real.progress.Progress`).
    ``sampler``/``renderer`` replace the preset's (one process only: they live in this one).
    """
    cfg = job.config()
    todo, summary, writer = plan(job, cfg, progress)  # validates the folder before any worker starts
    if not todo:
        return summary
    if workers > 1 and (sampler is not None or renderer is not None):
        raise Sim2RealError("this scene renders in one process (the open .blend); drop --workers")
    t0 = time.perf_counter()
    if workers <= 1:
        summary["rendered"] = render_indices(job, todo, on_done=lambda i, t: progress and progress.update(1),
                                             sampler=sampler, renderer=renderer, cfg=cfg, writer=writer)
    else:
        cores = os.cpu_count() or 1
        threads = cfg["render"]["threads"] or max(1, cores // workers)
        ctx = mp.get_context("spawn")  # bpy is not fork-safe
        queue = ctx.Queue()
        chunks = [todo[k::workers] for k in range(workers)]
        procs = [ctx.Process(target=_worker, args=(job, c, threads, queue, _blender_paths(), os.getpid()),
                             daemon=True) for c in chunks if c]
        for p in procs:
            p.start()
        running, errors = len(procs), []
        try:
            while running:
                kind, payload = queue.get()
                if kind == "done":
                    summary["rendered"] += 1
                    if progress is not None:
                        progress.update(1)
                elif kind == "exit":
                    running -= 1
                else:
                    errors.append(payload)
                    running -= 1
        finally:
            for p in procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
        if errors:
            raise Sim2RealError("a render worker failed: " + errors[0])
    summary["seconds"] = time.perf_counter() - t0
    return summary


def user_scene_job(scene, out, count: int, seed: int = 0, start: int = 0, shard=(0, 1), preset: str | None = None,
                   overrides: dict | None = None) -> RenderJob:
    """A validated job for the labelled objects of ``scene`` (an open Blender scene); its config
    records the scene's settings and labels, so resuming with other labels is refused."""
    from ..blender.user_scene import job_info

    preset_name, info = job_info(scene, preset, overrides)
    return RenderJob(preset=preset_name, out=str(out), count=count, seed=seed, start=start, shard=shard,
                     overrides=overrides, extra={"user_scene": info})


def run_user_scene(job: RenderJob, blend: str | os.PathLike | None = None, preset: str | None = None,
                   workers: int = 1, progress=None, scene=None) -> dict:
    """Render the labelled objects of the open (or ``blend``) file for ``job``'s indices.

    ``preset`` overrides the scene's ``sim2real_preset``. Resumable like :func:`run`; the
    sampler and renderer come from :mod:`sim2real.blender.user_scene`.
    """
    from ..blender import require_bpy
    from ..blender import user_scene as us

    bpy = require_bpy()
    if workers > 1:
        raise us.UserSceneError("a user scene renders in one process (the open .blend); drop --workers")
    if blend:
        us.open_blend(blend)
    scene = scene or bpy.context.scene
    ujob = user_scene_job(scene, job.out, job.count, job.seed, job.start, job.shard, preset, job.overrides)
    settings = us.scene_settings(scene, ujob.preset)
    cfg = ujob.config()
    return run(ujob, 1, progress, sampler=us.UserSceneSampler(scene, cfg, settings),
               renderer=us.UserSceneRenderer(scene, settings))


def _blender_paths() -> list[str]:
    """sys.path entries that importing the bpy module added (Blender's scripts folders)."""
    import re
    import sys

    user = os.path.join(os.path.expanduser("~"), ".config", "blender")
    return [p for p in sys.path if re.search(r"[\\/]bpy[\\/]\d+\.\d+[\\/]scripts", p) or p.startswith(user)]


def run_with_blender(job: RenderJob, blender: str, workers: int = 1) -> int:
    """Run the same job in Blender binaries (``blender -b -P sim2real/render.py -- ...``).

    ``workers`` > 1 starts that many Blender processes on interleaved sub-shards: indices
    with ``index % (n * workers) == i + n * k`` for k < workers, whose union is exactly
    the job's shard ``index % n == i`` (Blender's bundled Python cannot spawn bpy workers).
    """
    import dataclasses
    import shlex
    import subprocess

    script = Path(__file__).resolve().parent.parent / "render.py"
    i, n = job.shard
    procs = []
    try:
        for k in range(workers):
            sub = dataclasses.replace(job, shard=(i + n * k, n * workers))
            args = [blender, "-b", "--factory-startup", "--python-exit-code", "1", "-P", str(script), "--",
                    *job_to_args(sub)]
            procs.append(subprocess.Popen(args, env={**os.environ, PARENT_ENV: str(os.getpid())}))
    except FileNotFoundError:
        raise Sim2RealError(f"--blender {blender}: no such program; give the path of the blender executable "
                            f"(or drop --blender to render with the bpy module)") from None
    except PermissionError:
        raise Sim2RealError(f"--blender {shlex.quote(blender)} is not executable") from None
    finally:
        codes = [p.wait() for p in procs]
    return max(codes, default=0)


def job_to_args(job: RenderJob) -> list[str]:
    args = ["--out", str(job.out), "--count", str(job.count), "--seed", str(job.seed), "--start", str(job.start),
            "--shard", f"{job.shard[0]}/{job.shard[1]}"]
    if job.preset is not None:
        args += ["--preset", str(job.preset)]
    from ..config import toml_value

    for k, v in (job.overrides or {}).items():
        args += ["--set", f"{k}={toml_value(v)}"]  # parsed back as TOML by parse_set
    return args


def parse_set(items) -> dict:
    """``--set render.samples=4`` -> {"render.samples": 4} (values parsed as TOML)."""
    import tomllib

    out = {}
    for item in items or ():
        key, eq, value = item.partition("=")
        if not eq or "." not in key:
            raise Sim2RealError(f"--set {item!r}: expected section.field=value, e.g. render.samples=8")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value  # a bare string
    return out


__all__ = ["RenderJob", "run", "run_user_scene", "user_scene_job", "run_with_blender", "render_indices", "parse_shard", "parse_set", "__version__"]
