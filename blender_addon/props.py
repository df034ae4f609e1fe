"""The panel's settings (``scene.sim2real_settings``) and how they map onto the core.

User-scene settings are not stored in the property group but as plain scene custom
properties (``sim2real_camera``, ``sim2real_light``, ``sim2real_preset``), so a .blend
renders headless without the add-on (see ``sim2real/blender/user_scene.py``).
"""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, PointerProperty, StringProperty

from .core import module
from .registry import register_classes, unregister_classes

FILE = "FILE"
_enum_cache: dict[str, list] = {}  # Blender needs Python to keep dynamic enum items alive


def _preset_items(self, context):
    config = module("config")
    # a shipped preset whose mesh files are not at hand (patient presets in the zip) cannot
    # be built: not offered (pick it from a checkout with File…)
    names = [n for n in config.preset_names() if not config.missing_meshes(n)]
    _enum_cache["presets"] = [(n, n, f"scenes/{n}.toml (shipped preset)") for n in names] + [
        (FILE, "File…", "a preset .toml chosen below")]
    return _enum_cache["presets"]


_tables: dict = {}  # (preset, mtime) -> class table: the panel asks on every redraw


def class_table(settings):
    """The class table of the chosen preset (the base table when the preset does not load)."""
    config = module("config")
    try:
        path = config.resolve_preset(preset(settings))
        key = (str(path), path.stat().st_mtime)
        if key not in _tables:
            _tables.clear()
            _tables[key] = config.class_table(config.load_config(path))
        return _tables[key]
    except (module("errors").Sim2RealError, OSError):
        return module("classes").DEFAULT_TABLE


def _class_items(self, context):
    table = class_table(self)
    _enum_cache["classes"] = [(c.name, f"{c.id}  {c.name}", f"class id {c.id}") for c in table if c.id != 0]
    return _enum_cache["classes"]


def _scene_enum(prop: str, values: tuple[str, ...], default: str):
    def get(self):
        v = self.id_data.get(prop, default)
        return values.index(v) if v in values else values.index(default)

    def set_(self, value):
        self.id_data[prop] = values[value]

    return get, set_


_cam_get, _cam_set = _scene_enum("sim2real_camera", ("fixed", "path", "sampler"), "fixed")
_light_get, _light_set = _scene_enum("sim2real_light", ("scene", "scope"), "scene")

_RENDER = module("defaults").SCHEMA["render"]  # the panel's defaults and limits are the core's
_RES, _SPP = _RENDER["resolution"], _RENDER["samples"]


class Sim2RealSettings(bpy.types.PropertyGroup):
    preset: EnumProperty(name="Preset", items=_preset_items, description="scene preset from scenes/, or a file")
    preset_file: StringProperty(name="Preset file", subtype="FILE_PATH", description="a scene preset .toml")
    seed: IntProperty(name="Seed", default=0, min=0, description="data-set seed (same as --seed)")
    index: IntProperty(name="Sample", default=0, min=0,
                       description="sample index: (preset, seed, index) fixes the scene")
    label_class: EnumProperty(name="Class", items=_class_items, description="class given to the selected objects")
    source: EnumProperty(name="Source", default="PRESET", items=[
        ("PRESET", "Preset", "generated scenes: every sample drawn from the preset"),
        ("SCENE", "This scene", "this file's labelled objects, randomising only what is enabled below")])
    camera_mode: EnumProperty(name="Camera", get=_cam_get, set=_cam_set, items=[
        ("fixed", "Fixed", "the scene camera as it is"),
        ("path", "Path", "sample i renders frame start + i × step (an animated camera or Follow Path)"),
        ("sampler", "Sampler", "a camera pose drawn by the preset's camera sampler")],
        description="stored as the scene property sim2real_camera")
    light_mode: EnumProperty(name="Light", get=_light_get, set=_light_set, items=[
        ("scene", "Scene lights", "this file's lights, untouched"),
        ("scope", "Scope light", "add a randomised spot light on the camera (preset [light] ranges)")],
        description="stored as the scene property sim2real_light")
    out_dir: StringProperty(name="Output", subtype="DIR_PATH", description="data-set folder (resumable)")
    count: IntProperty(name="Count", default=10, min=1, description="number of samples")
    width: IntProperty(name="Width", default=_RES.default[0], min=int(_RES.lo), max=int(_RES.hi))
    height: IntProperty(name="Height", default=_RES.default[1], min=int(_RES.lo), max=int(_RES.hi))
    samples: IntProperty(name="Samples", default=_SPP.default, min=int(_SPP.lo), max=int(_SPP.hi),
                         description="Cycles samples per pixel for the image")
    denoise: BoolProperty(name="Denoise", default=_RENDER["denoise"].default,
                          description="OpenImageDenoise on the image (never on labels)")
    checkpoint: StringProperty(name="Checkpoint", subtype="FILE_PATH",
                               description="translator run folder, checkpoint.pt or exported translator.pt")
    variants: IntProperty(name="Variants", default=5, min=1, max=64, description="translations per render (-k)")
    translate_command: StringProperty(name="Command", description="the sim2real translate command to run")


def preset(settings) -> str:
    """The preset to load: a shipped name or an absolute file path; raises when unset/missing."""
    errors = module("errors")
    if settings.preset == FILE:
        if not settings.preset_file:
            raise errors.ConfigError("preset: choose a .toml file (Preset → File…)")
        path = bpy.path.abspath(settings.preset_file)
        module("config").resolve_preset(path)  # names the file and the known presets
        return path
    return settings.preset


def overrides(settings) -> dict:
    return {"render.resolution": [settings.width, settings.height], "render.samples": settings.samples,
            "render.denoise": settings.denoise}


def register() -> None:
    register_classes([Sim2RealSettings])
    bpy.types.Scene.sim2real_settings = PointerProperty(type=Sim2RealSettings)


def unregister() -> None:
    if hasattr(bpy.types.Scene, "sim2real_settings"):
        del bpy.types.Scene.sim2real_settings
    unregister_classes([Sim2RealSettings])
    _enum_cache.clear()
    _tables.clear()
