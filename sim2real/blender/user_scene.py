"""Render a user's own hand-made, labelled .blend with the same outputs as a generated scene.

    blender my_scene.blend -b -P sim2real/render.py -- --out DIR --count N
    python sim2real/render.py --blend my_scene.blend --out DIR --count N     (bpy module)

Properties read (all plain custom properties, so no add-on is needed to render; the
add-on's panel writes them):

Object (Object Properties → Custom Properties)
    ``sim2real_class``     str, a class name from the class table (wins when present)
    ``sim2real_class_id``  int, the class id (used when ``sim2real_class`` is absent;
                           the same property the generated scenes carry)
    Objects without either, or with class 0 (background), are unlabelled: they appear in
    the image and count as background in the labels (class 0, no depth, no normal).
    Objects disabled for rendering (``hide_render``) are ignored.

Scene (Scene Properties → Custom Properties)
    ``sim2real_camera``  "fixed" (default): the scene camera as it is;
                         "path": sample i uses frame ``frame_start + i * frame_step``
                         (wrapping at ``frame_end``), so an animated camera (keyframes, a
                         Follow Path constraint) and animated objects move per sample;
                         "sampler": a camera pose drawn by the preset's [camera] sampler,
                         aimed at a labelled object of a ``scene.target`` class (any
                         labelled class when none is present), inside the bounds of the
                         objects labelled ``abdominal_wall`` (or of all labelled objects).
    ``sim2real_light``   "scene" (default): the file's own lights and world, untouched;
                         "scope": adds a spot light on the camera, drawn per sample from
                         the preset's [light] ranges (the file's lights stay too).
    ``sim2real_preset``  preset name or .toml path for the class table extras, the
                         [render] settings and the sampler ranges; default "default".
                         ``--preset`` on the command line wins.

The camera must be a perspective camera without lens shift; the render uses the
preset's resolution (``--set render.resolution=[w, h]``), square pixels and a centred
principal point, so ``K`` in meta.json is exact. Instruments are not generated: the
per-sample ``instruments`` list is empty (label tool objects ``tool_shaft``/``tool_tip``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..config import class_table
from ..errors import Sim2RealError
from ..scene.description import Camera, Light, Material, MeshObject, SceneDescription
from ..scene.geometry import BLENDER_TO_OPENCV, intrinsics
from . import build, require_bpy
from .renderer import BlenderRenderer

CLASS_PROP = "sim2real_class"
CLASS_ID_PROP = "sim2real_class_id"  # also set by build.py on generated objects
CAMERA_PROP = "sim2real_camera"
LIGHT_PROP = "sim2real_light"
PRESET_PROP = "sim2real_preset"
CAMERA_MODES = ("fixed", "path", "sampler")
LIGHT_MODES = ("scene", "scope")
RENDERABLE = {"MESH", "CURVE", "SURFACE", "META", "FONT", "CURVES", "POINTCLOUD", "VOLUME"}


class UserSceneError(Sim2RealError):
    pass


def object_class(obj, table) -> int | None:
    """The class id an object is labelled with (None: unlabelled); raises on an unknown class."""
    name = obj.get(CLASS_PROP)
    if name:
        if str(name) not in table:
            raise UserSceneError(f"object {obj.name!r}: {CLASS_PROP} = {name!r} is not a class; "
                                 f"known: {', '.join(table.names)} (extra classes come from the preset's [[classes]])")
        return table.id_of(str(name))
    cid = obj.get(CLASS_ID_PROP)
    if cid is None:
        return None
    if int(cid) not in table:
        raise UserSceneError(f"object {obj.name!r}: {CLASS_ID_PROP} = {cid} is not in the class table "
                             f"(ids {', '.join(map(str, table.ids))})")
    return int(cid)


def labelled_objects(scene, table) -> list[tuple[object, int]]:
    """(object, class id) of every rendered, labelled, non-background object, sorted by name."""
    out = []
    for obj in sorted(scene.objects, key=lambda o: o.name):
        if obj.type not in RENDERABLE or obj.hide_render:
            continue
        cid = object_class(obj, table)
        if cid:  # None and 0 (background) are unlabelled
            out.append((obj, cid))
    return out


def scene_settings(scene, preset: str | None = None) -> dict:
    """The user-scene settings of ``scene`` (validated), with ``preset`` overriding the scene's."""
    camera = str(scene.get(CAMERA_PROP, "fixed") or "fixed")
    light = str(scene.get(LIGHT_PROP, "scene") or "scene")
    if camera not in CAMERA_MODES:
        raise UserSceneError(f"scene {scene.name!r}: {CAMERA_PROP} = {camera!r}; use one of {', '.join(CAMERA_MODES)}")
    if light not in LIGHT_MODES:
        raise UserSceneError(f"scene {scene.name!r}: {LIGHT_PROP} = {light!r}; use one of {', '.join(LIGHT_MODES)}")
    return {"camera": camera, "light": light, "preset": preset or str(scene.get(PRESET_PROP, "") or "default")}


def frames(scene) -> list[int]:
    step = max(1, scene.frame_step)
    return list(range(scene.frame_start, scene.frame_end + 1, step)) or [scene.frame_start]


def frame_for(scene, settings: dict, index: int) -> int:
    if settings["camera"] == "path":
        fr = frames(scene)
        return fr[index % len(fr)]
    return scene.frame_current


# --- the description of one sample ---------------------------------------------------


def _hfov(cam_data, width: int, height: int) -> float:
    """Horizontal field of view of a Blender camera rendered at ``width`` x ``height``."""
    if cam_data.type != "PERSP":
        raise UserSceneError(f"camera {cam_data.name!r} is {cam_data.type.lower()}; use a perspective camera")
    if abs(cam_data.shift_x) > 1e-9 or abs(cam_data.shift_y) > 1e-9:
        raise UserSceneError(f"camera {cam_data.name!r} has a lens shift; set shift x/y to 0 (K assumes a "
                             f"centred principal point)")
    fit = cam_data.sensor_fit
    if fit == "AUTO":
        fit = "HORIZONTAL" if width >= height else "VERTICAL"
        sensor = cam_data.sensor_width
    else:
        sensor = cam_data.sensor_width if fit == "HORIZONTAL" else cam_data.sensor_height
    half = math.atan(sensor / 2 / cam_data.lens)
    if fit == "HORIZONTAL":
        return 2 * half
    return 2 * math.atan(math.tan(half) * width / height)


def camera_pose_cv(obj) -> np.ndarray:
    """The camera-to-world 4x4 (OpenCV axes, scale removed) of a Blender camera object."""
    m = np.array(obj.matrix_world, float)
    r = m[:3, :3]
    m[:3, :3] = r / np.linalg.norm(r, axis=0, keepdims=True)
    return m @ BLENDER_TO_OPENCV


def _material(obj) -> Material:
    """The look recorded in meta.json: the first material's Principled BSDF, if any."""
    color, rough, spec, metal = (0.8, 0.8, 0.8), 0.5, 0.5, 0.0
    mat = obj.active_material
    if mat is not None:
        color = tuple(mat.diffuse_color[:3])
        rough, metal = float(mat.roughness), float(mat.metallic)
        bsdf = next((n for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled"), None) \
            if mat.use_nodes and mat.node_tree else None
        if bsdf is not None:
            color = tuple(bsdf.inputs["Base Color"].default_value[:3])
            rough = float(bsdf.inputs["Roughness"].default_value)
            metal = float(bsdf.inputs["Metallic"].default_value)
            sock = bsdf.inputs.get("Specular IOR Level") or bsdf.inputs.get("Specular")
            spec = float(sock.default_value) if sock is not None else spec
    return Material(base_color=tuple(float(c) for c in color), roughness=rough, specular=spec, metallic=metal)


def _world_mesh(obj, depsgraph) -> tuple[np.ndarray, np.ndarray]:
    """Evaluated triangles of ``obj`` in world metres (for the camera sampler)."""
    ev = obj.evaluated_get(depsgraph)
    mesh = ev.to_mesh()
    try:
        mesh.calc_loop_triangles()
        v = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", v)
        f = np.empty(len(mesh.loop_triangles) * 3, np.int32)
        mesh.loop_triangles.foreach_get("vertices", f)
    finally:
        ev.to_mesh_clear()
    m = np.array(obj.matrix_world, float)
    v = v.reshape(-1, 3).astype(float) @ m[:3, :3].T + m[:3, 3]
    return v, f.reshape(-1, 3)


class UserSceneSampler:
    """(seed, index) -> SceneDescription of the open scene's labelled objects.

    Draws from the same per-(seed, index) streams as :class:`sim2real.scene.sampler.Sampler`
    (camera, light and render streams), so the field-of-view mask of sample i matches a
    generated scene's.
    """

    def __init__(self, scene, cfg: dict, settings: dict):
        from ..scene.sampler import Sampler

        self.scene, self.cfg, self.settings = scene, cfg, settings
        self.camera = scene.camera  # the user's; the renderer points scene.camera at its own while rendering
        self.table = class_table(cfg)
        self.objects = labelled_objects(scene, self.table)
        if not self.objects:
            raise UserSceneError(f"scene {scene.name!r} has no labelled objects; give objects a class with the "
                                 f"add-on ('Assign class') or a custom property {CLASS_PROP} = \"liver\"")
        if len(self.objects) > 65535:
            raise UserSceneError("more than 65535 labelled objects (instance ids are uint16)")
        if settings["camera"] != "sampler" and scene.camera is None:
            raise UserSceneError(f"scene {scene.name!r} has no camera; add one, or set {CAMERA_PROP} = \"sampler\"")
        present = [t for t in cfg["scene"]["target"] if t in {self.table[c].name for _, c in self.objects}]
        targets = present or sorted({self.table[c].name for _, c in self.objects})
        sampler_cfg = {**cfg, "scene": {**cfg["scene"], "mode": "procedural", "target": targets}}
        self._sampler = Sampler(sampler_cfg)  # its camera and light draws, on the user's geometry

    def _objects(self, with_geometry: bool) -> list[MeshObject]:
        bpy = require_bpy()
        depsgraph = bpy.context.evaluated_depsgraph_get() if with_geometry else None
        out = []
        for iid, (obj, cid) in enumerate(self.objects, start=1):
            v, f = _world_mesh(obj, depsgraph) if with_geometry else (np.zeros((0, 3)), np.zeros((0, 3), np.int32))
            out.append(MeshObject(obj.name, cid, iid, v, f, _material(obj)))
        return out

    def __call__(self, seed: int, index: int) -> SceneDescription:
        scene, cfg, settings = self.scene, self.cfg, self.settings
        streams = self._sampler.streams(seed, index)
        r_cam, r_light, r_render = streams["camera"], streams["light"], streams["render"]
        frame = frame_for(scene, settings, index)
        scene.frame_set(frame)
        rs = cfg["render"]
        w, h = rs["resolution"]
        target_class, target_point = "", None
        objects = self._objects(with_geometry=settings["camera"] == "sampler")
        if settings["camera"] == "sampler":
            wall_id = self.table.id_of("abdominal_wall")
            walls = [o for o in objects if o.class_id == wall_id]
            pts = np.concatenate([o.vertices for o in (walls or objects)])
            lo, hi = pts.min(0), pts.max(0)
            half = (hi - lo) / 2 if walls else (hi - lo) / 2 * 1.25 + 0.06
            # the core sampler keeps the camera inside the ellipsoid and treats objects named
            # "abdominal_wall" as the enclosing cavity rather than as obstacles
            named = [MeshObject("abdominal_wall" if o.class_id == wall_id else o.name, o.class_id, o.instance_id,
                                o.vertices, o.faces, o.material) for o in objects]
            camera, target_class, target_point = self._sampler.camera(r_cam, named, ((lo + hi) / 2, half))
            for o in objects:  # geometry was only needed to aim; meta.json does not carry it
                o.vertices, o.faces = np.zeros((0, 3)), np.zeros((0, 3), np.int32)
        else:
            cam_obj = self.camera
            hfov = _hfov(cam_obj.data, w, h)
            camera = Camera(width=w, height=h, k=intrinsics(w, h, hfov), camera_to_world=camera_pose_cv(cam_obj),
                            hfov_rad=hfov, clip_start_m=cam_obj.data.clip_start, clip_end_m=cam_obj.data.clip_end)
        if settings["light"] == "scope":
            light = self._sampler.light(r_light)
            light_meta = None  # sample_meta's spot-at-camera record is right
        else:
            light = Light(energy_w=0.0, spot_size_rad=0.0, spot_blend=0.0, radius_m=0.0, color=(0.0, 0.0, 0.0),
                          ambient=0.0)
            light_meta = {"type": "scene", "lights": sorted(o.name for o in scene.objects
                                                            if o.type == "LIGHT" and not o.hide_render)}
        render = self._sampler.render_settings(r_render, streams["fov"])
        meta = {"source": {"kind": "user_scene", "blend": bpy_filepath(), "scene": scene.name, "frame": frame,
                           "camera_mode": settings["camera"], "light_mode": settings["light"]}}
        if light_meta is not None:
            meta["light"] = light_meta
        return SceneDescription(index=index, seed=seed, objects=objects, camera=camera, light=light, render=render,
                                target_class=target_class, target_point=target_point, meta=meta)


def bpy_filepath() -> str:
    return require_bpy().data.filepath


# --- rendering -----------------------------------------------------------------------


class UserSceneRenderer(BlenderRenderer):
    """Renders the open file as it is: sets instance ids, the sample's camera (and scope
    light), then restores everything it changed on :meth:`close` (the user's objects are
    never removed)."""

    def __init__(self, scene=None, settings: dict | None = None, quiet: bool = True):
        bpy = require_bpy()
        super().__init__(factory_reset=False, quiet=quiet)
        if scene is not None:
            self.scene = scene
        self.settings = settings or scene_settings(self.scene)
        self._saved_pass = {o.name: o.pass_index for o in bpy.data.objects}
        self._saved_camera = self.scene.camera
        self._saved_frame = self.scene.frame_current
        self._made: list = []
        self._cam = self._light = None

    def _new(self, coll, name, *args):
        idb = coll.new(name, *args)
        idb[build.TAG] = True
        self._made.append((coll, idb))
        return idb

    def prepare(self, desc: SceneDescription) -> None:
        bpy = require_bpy()
        from mathutils import Matrix

        self.scene.frame_set(frame_for(self.scene, self.settings, desc.index))
        ids = {o.name: o.instance_id for o in desc.objects}
        for obj in self.scene.objects:
            obj.pass_index = ids.get(obj.name, 0)  # unlabelled objects -> background
        if self._cam is None:
            data = self._new(bpy.data.cameras, "sim2real_camera")
            self._cam = self._new(bpy.data.objects, "sim2real_camera", data)
            self.scene.collection.objects.link(self._cam)
        c = desc.camera
        cam = self._cam.data
        cam.sensor_fit = "HORIZONTAL"
        cam.angle = c.hfov_rad
        cam.clip_start, cam.clip_end = c.clip_start_m, c.clip_end_m
        self._cam.matrix_world = Matrix(build.camera_to_blender_matrix(c.camera_to_world).tolist())
        self.scene.camera = self._cam
        if self.settings["light"] == "scope":
            if self._light is None:
                data = self._new(bpy.data.lights, "sim2real_scope_light", "SPOT")
                self._light = self._new(bpy.data.objects, "sim2real_scope_light", data)
                self.scene.collection.objects.link(self._light)
                self._light.parent = self._cam
            li, ld = desc.light, self._light.data
            ld.energy, ld.color, ld.spot_size = li.energy_w, li.color, li.spot_size_rad
            ld.spot_blend, ld.shadow_soft_size = li.spot_blend, li.radius_m

    def close(self) -> None:
        bpy = require_bpy()
        self.scene.camera = self._saved_camera
        for coll, idb in reversed(self._made):
            coll.remove(idb, do_unlink=True)
        self._made.clear()
        self._cam = self._light = None
        for obj in bpy.data.objects:
            if obj.name in self._saved_pass:
                obj.pass_index = self._saved_pass[obj.name]
        mat = bpy.data.materials.get("sim2real_label_override")
        if mat is not None and mat.users == 0:
            bpy.data.materials.remove(mat)
        self.scene.frame_set(self._saved_frame)


# --- the job -------------------------------------------------------------------------


def open_blend(path: str | os.PathLike) -> None:
    """Open ``path`` in this Blender unless it is already the open file."""
    bpy = require_bpy()
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise UserSceneError(f"--blend {path}: no such file")
    if bpy.data.filepath and Path(bpy.data.filepath).resolve() == p:
        return
    bpy.ops.wm.open_mainfile(filepath=str(p), load_ui=False)


def job_info(scene, preset: str | None = None, overrides: dict | None = None) -> tuple[str | None, dict]:
    """The preset and the settings + labels of ``scene`` that a render job records (validated)."""
    from ..config import load_config

    settings = scene_settings(scene, preset)
    table = class_table(load_config(settings["preset"], overrides))
    objs = labelled_objects(scene, table)
    if not objs:
        raise UserSceneError(f"scene {scene.name!r} has no labelled objects; give objects a class with the add-on "
                             f"('Assign class') or a custom property {CLASS_PROP} = \"liver\"")
    info = {"scene": scene.name, "camera": settings["camera"], "light": settings["light"],
            "objects": [[o.name, table[c].name] for o, c in objs]}
    if settings["camera"] == "path":
        info["frames"] = frames(scene)
    return settings["preset"], info


def opened_blend() -> str:
    """The .blend this Blender was started with ('' when none, or when bpy is not loaded)."""
    import sys

    bpy = sys.modules.get("bpy")
    return getattr(getattr(bpy, "data", None), "filepath", "") if bpy is not None else ""
