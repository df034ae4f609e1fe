"""Class labels on objects, and the reversible "Show labels" viewport view.

Labels are two object custom properties, read by the headless renderer
(``sim2real/blender/user_scene.py``): ``sim2real_class`` (class name) and
``sim2real_class_id`` (class id, the property generated objects carry too).

"Show labels" sets each object's viewport colour to its class colour and the 3D views
to Solid shading coloured by object. What it changes is remembered in custom properties
(objects: ``_sim2real_prev_color``; screens: ``_sim2real_prev_shading``; scene flag:
``sim2real_labels_shown``), so hiding it restores the file exactly, even after a reload.
"""

from __future__ import annotations

import bpy

from .core import module

PREV_COLOR = "_sim2real_prev_color"
PREV_SHADING = "_sim2real_prev_shading"
SHOWN = "sim2real_labels_shown"
UNKNOWN_COLOR = (1.0, 0.0, 1.0, 1.0)


def _user_scene():
    return module("blender.user_scene")


def assign(objects, table, name: str) -> int:
    """Label ``objects`` with class ``name``; returns how many were labelled."""
    cid = table.id_of(name)
    n = 0
    for obj in objects:
        obj[_user_scene().CLASS_PROP] = name
        obj[_user_scene().CLASS_ID_PROP] = cid
        n += 1
    return n


def clear(objects) -> int:
    n = 0
    for obj in objects:
        for key in (_user_scene().CLASS_PROP, _user_scene().CLASS_ID_PROP):
            if key in obj:
                del obj[key]
                n += 1
    return n


def describe(obj, table) -> str:
    """'liver (1)', 'unlabelled' or the problem, for the panel."""
    try:
        cid = _user_scene().object_class(obj, table)
    except module("errors").Sim2RealError as exc:
        return module("errors").one_line(exc)
    if cid is None:
        return "unlabelled"
    return f"{table[cid].name} ({cid})"


def _srgb_to_linear(c: float) -> float:
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def class_color(obj, table) -> tuple[float, float, float, float]:
    try:
        cid = _user_scene().object_class(obj, table)
    except module("errors").Sim2RealError:
        return UNKNOWN_COLOR
    rgb = table[cid or 0].color
    return (*(_srgb_to_linear(v / 255) for v in rgb), 1.0)


def _view3d_spaces(screen):
    for i, area in enumerate(screen.areas):
        if area.type == "VIEW_3D":
            for space in area.spaces:
                if space.type == "VIEW_3D":
                    yield str(i), space


def is_shown(scene) -> bool:
    return bool(scene.get(SHOWN))


def show(scene, table) -> None:
    """Colour every object by class and switch 3D views to object colours."""
    for obj in scene.objects:
        if PREV_COLOR not in obj:
            obj[PREV_COLOR] = list(obj.color)
        obj.color = class_color(obj, table)
    for screen in bpy.data.screens:
        prev = dict(screen.get(PREV_SHADING, {}))
        for key, space in _view3d_spaces(screen):
            if key not in prev:
                prev[key] = [space.shading.type, space.shading.color_type]
            space.shading.type = "SOLID"
            space.shading.color_type = "OBJECT"
        if prev:
            screen[PREV_SHADING] = prev
    scene[SHOWN] = True


def hide(scene) -> None:
    """Undo :func:`show`: the previous object colours and viewport shading."""
    for obj in bpy.data.objects:
        if PREV_COLOR in obj:
            obj.color = tuple(obj[PREV_COLOR])
            del obj[PREV_COLOR]
    for screen in bpy.data.screens:
        prev = screen.get(PREV_SHADING)
        if prev is None:
            continue
        for key, space in _view3d_spaces(screen):
            if key in prev:
                space.shading.type, space.shading.color_type = prev[key]
        del screen[PREV_SHADING]
    if SHOWN in scene:
        del scene[SHOWN]


def refresh(scene, table) -> None:
    """Recolour after labels changed, if the label view is on."""
    if is_shown(scene):
        show(scene, table)

