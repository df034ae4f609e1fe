"""The panel's operators. Each one calls the sim2real core (the code behind the CLI) and
reports failures in the Blender UI with the core's message: never a silent failure."""

from __future__ import annotations

import functools
import importlib.util
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import bpy
from bpy.props import StringProperty

from . import labels, props, tasks
from .core import module, root
from .registry import register_classes, unregister_classes

PREVIEW_IMAGE = "sim2real_preview"
BUILT_PROP = "sim2real_built"


class _Run:
    """execute() -> run(); any exception becomes an ERROR report naming the problem."""

    bl_options = {"REGISTER"}

    def execute(self, context):
        try:
            return self.run(context) or {"FINISHED"}
        except module("errors").Sim2RealError as exc:
            self.report({"ERROR"}, _one_line(exc))
        except Exception as exc:  # an unexpected failure still reaches the user
            self.report({"ERROR"}, _one_line(exc, with_type=True))
        return {"CANCELLED"}


def _one_line(exc, with_type=False):
    return module("errors").one_line(exc, with_type=with_type)


def _settings(context):
    return context.scene.sim2real_settings


def _user_scene():
    return module("blender.user_scene")


# --- scene ---------------------------------------------------------------------------


def build_sample(context, s) -> str:
    """Build sample (preset, seed, index) in the current file; returns a summary line."""
    preset = props.preset(s)
    cfg = module("config").load_config(preset, props.overrides(s))
    desc = module("scene.sampler").Sampler(cfg)(s.seed, s.index)
    scene = context.scene
    module("blender.build").build(desc, scene)
    scene.render.resolution_x, scene.render.resolution_y = desc.camera.width, desc.camera.height
    scene.render.resolution_percentage = 100
    name = Path(preset).name if s.preset == props.FILE else preset
    scene[BUILT_PROP] = f"{name}, seed {s.seed}, sample {s.index}"
    labels.refresh(scene, module("config").class_table(cfg))
    return (f"built {scene[BUILT_PROP]}: {len(desc.objects)} objects, {len(desc.instruments)} instruments "
            f"(collection {module('blender.build').COLLECTION!r})")


class SIM2REAL_OT_build_scene(_Run, bpy.types.Operator):
    """Build the scene of (preset, seed, sample) in its own collection, replacing the last build"""

    bl_idname = "sim2real.build_scene"
    bl_label = "Build scene"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        self.report({"INFO"}, build_sample(context, _settings(context)))


class SIM2REAL_OT_randomize(_Run, bpy.types.Operator):
    """Build the next sample: new organ shapes, camera, instruments, lights and materials"""

    bl_idname = "sim2real.randomize"
    bl_label = "Randomize"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        s = _settings(context)
        s.index += 1
        self.report({"INFO"}, build_sample(context, s))


# --- labels --------------------------------------------------------------------------


def _remember_preset(scene, s) -> None:
    """Record the preset on the scene (sim2real_preset) for headless renders of this file."""
    try:
        scene[_user_scene().PRESET_PROP] = props.preset(s)
    except module("errors").Sim2RealError:
        pass


class SIM2REAL_OT_assign_class(_Run, bpy.types.Operator):
    """Give the selected objects the chosen class (object properties sim2real_class, sim2real_class_id)"""

    bl_idname = "sim2real.assign_class"
    bl_label = "Assign class"
    bl_options = {"REGISTER", "UNDO"}

    class_name: StringProperty(name="Class", description="class name; default: the panel's class")

    def run(self, context):
        s = _settings(context)
        objs = [o for o in context.selected_objects if o.type in _user_scene().RENDERABLE]
        if not objs:
            raise module("errors").Sim2RealError("select the objects to label first (meshes, curves, text…)")
        table = props.class_table(s)
        name = self.class_name or s.label_class
        if name not in table:
            raise module("errors").Sim2RealError(f"unknown class {name!r}; known: {', '.join(table.names)}")
        n = labels.assign(objs, table, name)
        _remember_preset(context.scene, s)
        labels.refresh(context.scene, table)
        self.report({"INFO"}, f"labelled {n} object(s) {name} ({table.id_of(name)})")


class SIM2REAL_OT_clear_class(_Run, bpy.types.Operator):
    """Remove the class of the selected objects (they render as background in the labels)"""

    bl_idname = "sim2real.clear_class"
    bl_label = "Clear class"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        objs = list(context.selected_objects)
        if not objs:
            raise module("errors").Sim2RealError("select the objects whose class to clear")
        labels.clear(objs)
        labels.refresh(context.scene, props.class_table(_settings(context)))


class SIM2REAL_OT_show_labels(_Run, bpy.types.Operator):
    """Toggle a viewport view coloured by class (reversible: colours and shading are restored)"""

    bl_idname = "sim2real.show_labels"
    bl_label = "Show labels"
    bl_options = {"REGISTER", "UNDO"}

    def run(self, context):
        scene = context.scene
        if labels.is_shown(scene):
            labels.hide(scene)
        else:
            labels.show(scene, props.class_table(_settings(context)))


# --- render --------------------------------------------------------------------------


def _job_args(job, blend: str | None = None) -> list[str]:
    """The headless script's arguments for ``job``: the core's own encoding, plus ``--blend``."""
    return module("rendering.job").job_to_args(job) + (["--blend", blend] if blend else [])


def _output_dir(s) -> str:
    if not s.out_dir.strip():
        raise module("errors").Sim2RealError("choose an output folder (Render → Output)")
    return bpy.path.abspath(s.out_dir)


def _prepare_job(context, s, out: str, count: int, start: int = 0):
    """A validated job (preset or this scene), with its data-set folder opened."""
    pipeline = module("rendering.job")
    preset, overrides = props.preset(s), props.overrides(s)
    if s.source == "SCENE":
        job = module("rendering.job").user_scene_job(context.scene, out, count, s.seed, start, (0, 1), preset, overrides)
        _remember_preset(context.scene, s)
    else:
        job = pipeline.RenderJob(preset=preset, out=out, count=count, seed=s.seed, start=start, overrides=overrides)
    pipeline.open_writer(job, job.config())  # writable folder, same settings when resuming: else a clear error
    return job


def _scene_copy(tmp: str) -> str:
    """Save a copy of the open file for the background process (the open file is untouched)."""
    path = str(Path(tmp) / "scene.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path, copy=True, check_existing=False)
    return path


def _check_idle(kind: str) -> None:
    if tasks.running(kind):
        raise module("errors").Sim2RealError(f"a {kind} is already running; wait or cancel it")


class SIM2REAL_OT_render_dataset(_Run, bpy.types.Operator):
    """Render the data set in a background process (resumable: finished samples are kept)"""

    bl_idname = "sim2real.render_dataset"
    bl_label = "Render data set"

    def run(self, context):
        _check_idle("render")
        s = _settings(context)
        out = _output_dir(s)
        job = _prepare_job(context, s, out, s.count)
        tmp = tempfile.mkdtemp(prefix="sim2real_render_")
        try:
            blend = _scene_copy(tmp) if s.source == "SCENE" else None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        expected = [module("dataset.format").sample_id(i) for i in job.indices()]
        task = tasks.start(tasks.Task("render", tasks.headless_command(_job_args(job, blend)), out=out,
                                      expected=expected, cleanup=[tmp]))
        self.report({"INFO"}, f"rendering {task.total - task.done} of {task.total} samples into {out} "
                              f"({task.done} already done)")


class SIM2REAL_OT_cancel(_Run, bpy.types.Operator):
    """Stop a background job (a cancelled render resumes where it stopped)"""

    bl_idname = "sim2real.cancel"
    bl_label = "Cancel"

    kind: StringProperty(default="render")

    def run(self, context):
        task = tasks.running(self.kind)
        if task is None:
            raise module("errors").Sim2RealError(f"no {self.kind} is running")
        task.cancel()
        self.report({"INFO"}, task.message)


def load_preview(out: str) -> str:
    """Load the contact sheet (image | labels | depth | normals) of the rendered sample."""
    ds = module("dataset.format").open_dataset(out)
    sheet = module("dataset.preview").contact_sheet(ds, max_rows=1)
    png = Path(out).parent / "preview.png"
    module("io").write_png(png, sheet)
    old = bpy.data.images.get(PREVIEW_IMAGE)
    if old is not None:
        bpy.data.images.remove(old)
    img = bpy.data.images.load(str(png), check_existing=False)
    img.name = PREVIEW_IMAGE
    img.pack()  # the temporary folder goes away
    try:
        img.preview_ensure()  # the panel's thumbnail
    except RuntimeError:  # no previews without a GPU context (background mode)
        pass
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.spaces.active.image = img
    counts = ds[0].meta.get("class_pixel_counts", {})
    seen = ", ".join(f"{k} {v}" for k, v in counts.items() if v and k != "background")
    return f"preview of sample {ds[0].id}: {seen or 'no labelled pixels'} (image '{PREVIEW_IMAGE}')"


class SIM2REAL_OT_render_preview(_Run, bpy.types.Operator):
    """Render the current sample (image + labels) in the background and show it"""

    bl_idname = "sim2real.render_preview"
    bl_label = "Render preview"

    def run(self, context):
        _check_idle("preview")
        s = _settings(context)
        tmp = tempfile.mkdtemp(prefix="sim2real_preview_")
        out = str(Path(tmp) / "set")
        try:
            job = _prepare_job(context, s, out, 1, start=s.index)
            blend = _scene_copy(tmp) if s.source == "SCENE" else None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

        def finish(task):
            if task.state == "done":
                task.message = load_preview(out)

        tasks.start(tasks.Task("preview", tasks.headless_command(_job_args(job, blend)), out=out,
                               expected=[module("dataset.format").sample_id(s.index)], on_finish=finish, cleanup=[tmp]))
        self.report({"INFO"}, f"rendering a preview of sample {s.index}")


# --- translate -----------------------------------------------------------------------

_TRANSLATE = ("import os, sys; sys.path.insert(0, sys.argv[1]); "
              "from sim2real.rendering.job import PARENT_ENV, die_with_parent; "
              "os.environ.get(PARENT_ENV, '').isdigit() and die_with_parent(int(os.environ[PARENT_ENV])); "
              "from sim2real.translate.inference import TranslateOptions, run_translation; "
              "print(run_translation(TranslateOptions(sys.argv[2], sys.argv[3], sys.argv[4], k=int(sys.argv[5]))))")


def translate_command(s) -> tuple[str, str, str, str]:
    """(command line, checkpoint, data, out) of the translation of the render folder."""
    data = _output_dir(s).rstrip("/\\")
    out = data + "_translated"
    ck = bpy.path.abspath(s.checkpoint) if s.checkpoint.strip() else ""
    cmd = (f"sim2real translate --checkpoint {shlex.quote(ck or 'RUN/checkpoint.pt')} --data {shlex.quote(data)} "
           f"--out {shlex.quote(out)} -k {s.variants}")
    return cmd, ck, data, out


@functools.lru_cache(maxsize=1)
def torch_available() -> bool:
    """torch importable in this (Blender's) Python; asked once, the panel draws often."""
    return importlib.util.find_spec("torch") is not None


class SIM2REAL_OT_translate(_Run, bpy.types.Operator):
    """Translate the rendered set with a trained translator (needs torch in Blender's Python;
    otherwise shows the sim2real translate command to run)"""

    bl_idname = "sim2real.translate"
    bl_label = "Translate"

    def run(self, context):
        s = _settings(context)
        cmd, ck, data, out = translate_command(s)
        s.translate_command = cmd
        if ck and not Path(ck).exists():
            raise module("errors").Sim2RealError(f"checkpoint {ck}: no such file or folder")
        module("dataset.format").open_dataset(data)  # a clear error when nothing was rendered there
        if not ck or not torch_available():
            why = "no checkpoint chosen" if not ck else "torch is not importable in Blender's Python"
            _copy(context, cmd)
            self.report({"WARNING"}, f"{why}; run in a terminal (copied): {cmd}")
            return
        _check_idle("translate")
        tasks.start(tasks.Task("translate", [sys.executable, "-c", _TRANSLATE, str(root()), ck, data, out,
                                             str(s.variants)], out=out))
        self.report({"INFO"}, f"translating {data} -> {out}")


def _copy(context, text: str) -> None:
    try:
        context.window_manager.clipboard = text
    except (AttributeError, RuntimeError):  # no clipboard headless
        pass


class SIM2REAL_OT_copy_command(_Run, bpy.types.Operator):
    """Copy the sim2real translate command to the clipboard"""

    bl_idname = "sim2real.copy_command"
    bl_label = "Copy command"

    def run(self, context):
        _copy(context, _settings(context).translate_command)


CLASSES = (SIM2REAL_OT_build_scene, SIM2REAL_OT_randomize, SIM2REAL_OT_assign_class, SIM2REAL_OT_clear_class,
           SIM2REAL_OT_show_labels, SIM2REAL_OT_render_dataset, SIM2REAL_OT_cancel, SIM2REAL_OT_render_preview,
           SIM2REAL_OT_translate, SIM2REAL_OT_copy_command)


def register() -> None:
    register_classes(CLASSES)


def unregister() -> None:
    unregister_classes(CLASSES)
