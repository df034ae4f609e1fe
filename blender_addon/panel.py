"""The sidebar panel: 3D viewport → N → "Sim2Real" tab (Scene, Labels, Render, Translate)."""

from __future__ import annotations

import bpy

from . import labels, operators, props, tasks
from .core import module, package
from .registry import register_classes, unregister_classes

CATEGORY = "Sim2Real"


class _Sub:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
    bl_parent_id = "SIM2REAL_PT_main"


class SIM2REAL_PT_main(bpy.types.Panel):
    bl_label = "Sim2Real"
    bl_idname = "SIM2REAL_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY

    def draw(self, context):
        self.layout.label(text=f"sim2real {package.__version__}: labelled laparoscopy scenes")


class SIM2REAL_PT_scene(_Sub, bpy.types.Panel):
    bl_label = "Scene"
    bl_idname = "SIM2REAL_PT_scene"

    def draw(self, context):
        layout, s = self.layout, context.scene.sim2real_settings
        layout.prop(s, "preset")
        if s.preset == props.FILE:
            layout.prop(s, "preset_file", text="")
        row = layout.row(align=True)
        row.prop(s, "seed")
        row.prop(s, "index")
        row = layout.row(align=True)
        row.operator(operators.SIM2REAL_OT_build_scene.bl_idname, icon="SCENE_DATA")
        row.operator(operators.SIM2REAL_OT_randomize.bl_idname, icon="FILE_REFRESH")
        built = context.scene.get(operators.BUILT_PROP)
        if built:
            layout.label(text=f"Built: {built}", icon="INFO")


class SIM2REAL_PT_labels(_Sub, bpy.types.Panel):
    bl_label = "Labels"
    bl_idname = "SIM2REAL_PT_labels"

    def draw(self, context):
        layout, s, scene = self.layout, context.scene.sim2real_settings, context.scene
        table = props.class_table(s)
        row = layout.row(align=True)
        row.prop(s, "label_class", text="")
        row.operator(operators.SIM2REAL_OT_assign_class.bl_idname, text="Assign", icon="CHECKMARK")
        row.operator(operators.SIM2REAL_OT_clear_class.bl_idname, text="", icon="X")
        obj = context.active_object
        if obj is not None:
            layout.label(text=f"{obj.name}: {labels.describe(obj, table)}", icon="OBJECT_DATA")
        try:
            n = len(module("blender.user_scene").labelled_objects(scene, table))
        except module("errors").Sim2RealError as exc:
            layout.label(text=module("errors").one_line(exc), icon="ERROR")
        else:
            layout.label(text=f"{n} labelled object(s) in the scene")
        shown = labels.is_shown(scene)
        layout.operator(operators.SIM2REAL_OT_show_labels.bl_idname, text="Hide labels" if shown else "Show labels",
                        icon="HIDE_OFF" if shown else "COLOR", depress=shown)


def _draw_task(layout, kind: str) -> None:
    task = tasks.TASKS.get(kind)
    if task is None:
        return
    if task.running:
        text = f"{task.done}/{task.total} samples" if task.total > 1 else f"running {task.elapsed:.0f} s"
        row = layout.row(align=True)
        if hasattr(row, "progress"):  # UILayout.progress: Blender 4.0+
            row.progress(factor=task.fraction, type="BAR", text=text)
        else:
            row.label(text=text)
        op = row.operator(operators.SIM2REAL_OT_cancel.bl_idname, text="", icon="CANCEL")
        op.kind = kind
    elif task.message:
        icon = {"done": "CHECKMARK", "cancelled": "PAUSE"}.get(task.state, "ERROR")
        layout.label(text=task.message, icon=icon)


class SIM2REAL_PT_render(_Sub, bpy.types.Panel):
    bl_label = "Render"
    bl_idname = "SIM2REAL_PT_render"

    def draw(self, context):
        layout, s = self.layout, context.scene.sim2real_settings
        layout.prop(s, "source", expand=True)
        if s.source == "SCENE":
            col = layout.column(align=True)
            col.prop(s, "camera_mode")
            col.prop(s, "light_mode")
        layout.prop(s, "out_dir")
        col = layout.column(align=True)
        col.prop(s, "count")
        row = col.row(align=True)
        row.prop(s, "width")
        row.prop(s, "height")
        row = col.row(align=True)
        row.prop(s, "samples")
        row.prop(s, "denoise")
        layout.operator(operators.SIM2REAL_OT_render_dataset.bl_idname, icon="RENDER_ANIMATION")
        _draw_task(layout, "render")
        layout.operator(operators.SIM2REAL_OT_render_preview.bl_idname, icon="RENDER_STILL")
        _draw_task(layout, "preview")
        img = bpy.data.images.get(operators.PREVIEW_IMAGE)
        if img is not None and img.preview is not None:
            layout.template_icon(icon_value=img.preview.icon_id, scale=8.0)


class SIM2REAL_PT_translate(_Sub, bpy.types.Panel):
    bl_label = "Translate"
    bl_idname = "SIM2REAL_PT_translate"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout, s = self.layout, context.scene.sim2real_settings
        layout.prop(s, "checkpoint")
        layout.prop(s, "variants")
        layout.operator(operators.SIM2REAL_OT_translate.bl_idname, icon="SHADERFX")
        if not operators.torch_available():
            layout.label(text="torch is not in Blender's Python: shows the command", icon="INFO")
        _draw_task(layout, "translate")
        if s.translate_command:
            box = layout.box()
            for i in range(0, len(s.translate_command), 48):  # labels do not wrap
                box.label(text=s.translate_command[i:i + 48])
            box.operator(operators.SIM2REAL_OT_copy_command.bl_idname, icon="COPYDOWN")


CLASSES = (SIM2REAL_PT_main, SIM2REAL_PT_scene, SIM2REAL_PT_labels, SIM2REAL_PT_render, SIM2REAL_PT_translate)


def register() -> None:
    register_classes(CLASSES)


def unregister() -> None:
    unregister_classes(CLASSES)
