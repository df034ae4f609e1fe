"""Render settings and the two renders of a sample: the image, and the label passes.

The image is rendered with the configured samples and denoising. The labels (object
index, depth, normals) come from a second one-sample render whose pixel filter is
shrunk to the pixel centre, so no pass is ever averaged across an object edge. Both
write plain EXR files (no compositor, which changed in Blender 5.0). Objects built with
``labelled=False`` (translucent connective tissue) are in the image only: the label
render hides them from camera rays, so its passes show the surface beneath.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..defaults import LABEL_RENDER
from ..io.exr import read_exr
from ..scene.description import RenderSettings
from . import compat, require_bpy


def configure(scene, rs: RenderSettings, width: int, height: int) -> None:
    scene.render.engine = "CYCLES"
    if rs.device == "GPU":
        compat.enable_gpu()
    scene.cycles.device = rs.device
    scene.render.resolution_x = width
    scene.render.resolution_y = height
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.render.use_persistent_data = True  # reuse the BVH between the image and label renders
    if rs.threads:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = rs.threads
    else:
        scene.render.threads_mode = "AUTO"
    scene.cycles.seed = rs.noise_seed
    scene.cycles.use_animated_seed = False
    scene.cycles.max_bounces = rs.max_bounces
    if hasattr(scene.cycles, "use_light_tree"):
        scene.cycles.use_light_tree = rs.light_tree
    scene.cycles.caustics_reflective = False
    scene.cycles.caustics_refractive = False
    # "Standard" = the plain sRGB transfer function, which postprocess applies itself.
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.display_settings.display_device = "sRGB"
    img = scene.render.image_settings
    compat.use_multilayer_exr(img)
    img.color_depth = "32"
    img.exr_codec = "NONE"  # readable without the openexr package (Blender's own Python)


def _render_to(scene, path: Path) -> None:
    bpy = require_bpy()
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    if not path.is_file():
        raise RuntimeError(f"Blender did not write {path}")


def render_image(scene, rs: RenderSettings, path: Path) -> None:
    """The beauty render (linear Combined, float EXR)."""
    compat.enable_passes(scene.view_layers[0], depth=False, normal=False, index=False)
    for vl in scene.view_layers[1:]:
        vl.use = False
    scene.cycles.samples = rs.samples
    scene.cycles.use_adaptive_sampling = rs.samples > 8
    scene.cycles.filter_width = 1.5
    compat.set_denoise(scene, rs.denoise)
    _render_to(scene, path)


def _label_material():
    """The label render's material: black emission, no BSDF. The passes need no shading,
    and without a BSDF Cycles samples no lights and traces no shadow rays: the label render
    costs a quarter of what a plain diffuse override costs (and the scene's textured
    materials would cost more still). The Normal pass then holds the shading normal, as
    with a diffuse BSDF: smooth normals, bump maps not applied."""
    bpy = require_bpy()
    mat = bpy.data.materials.get("sim2real_label_override")
    if mat is None:
        mat = bpy.data.materials.new("sim2real_label_override")
        mat["sim2real"] = True
        compat.use_nodes(mat)
        nt = mat.node_tree
        nt.nodes.clear()
        out = nt.nodes.new("ShaderNodeOutputMaterial")
        emit = nt.nodes.new("ShaderNodeEmission")
        emit.inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
        emit.inputs["Strength"].default_value = 0.0
        nt.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    return mat


def render_labels(scene, path: Path) -> dict:
    """Object index, depth and normal passes from one pixel-centred sample per pixel.

    Returns the channels (``*.IndexOB.X``, ``*.Depth.Z``, ``*.Normal.X/Y/Z``). Where
    Blender writes no passes to EXR files (bpy 5.0), the same values are rendered as
    exact emission colours instead (two one-sample renders).
    """
    vl = scene.view_layers[0]
    compat.enable_passes(vl, depth=True, normal=True, index=True)
    previous_override = vl.material_override
    scene.cycles.samples = LABEL_RENDER["samples"]
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.filter_width = LABEL_RENDER["filter_width"]
    compat.set_denoise(scene, False)
    bounces = scene.cycles.max_bounces
    scene.cycles.max_bounces = 0
    hidden = _hide_unlabelled(scene)
    try:
        if compat.writes_passes_to_exr():
            vl.material_override = _label_material()
            _render_to(scene, path)
            return read_exr(path)
        return _labels_as_emission(scene, vl, path)
    finally:
        scene.cycles.max_bounces = bounces
        vl.material_override = previous_override
        for obj, was in hidden:
            obj.visible_camera = was


def _hide_unlabelled(scene) -> list:
    """Hide objects built with ``labelled=False`` (translucent connective tissue) from camera
    rays, so every label pass shows the surface beneath them; returns what to restore."""
    hidden = []
    for obj in scene.objects:
        if not obj.get("sim2real_labelled", True):
            hidden.append((obj, obj.visible_camera))
            obj.visible_camera = False
    return hidden


def _emission_material(name: str, build):
    bpy = require_bpy()
    mat = bpy.data.materials.get(name)
    if mat is None:
        mat = bpy.data.materials.new(name)
        mat["sim2real"] = True
        compat.use_nodes(mat)
        nt = mat.node_tree
        nt.nodes.clear()
        out = nt.nodes.new("ShaderNodeOutputMaterial")
        emit = nt.nodes.new("ShaderNodeEmission")
        emit.inputs["Strength"].default_value = 1.0
        nt.links.new(emit.outputs["Emission"], out.inputs["Surface"])
        combine = nt.nodes.new("ShaderNodeCombineXYZ")
        nt.links.new(combine.outputs["Vector"], emit.inputs["Color"])
        build(nt, combine)
    return mat


def _index_depth(nt, combine):
    info = nt.nodes.new("ShaderNodeObjectInfo")
    cam = nt.nodes.new("ShaderNodeCameraData")
    nt.links.new(info.outputs["Object Index"], combine.inputs["X"])
    nt.links.new(cam.outputs["View Z Depth"], combine.inputs["Y"])


def _normal(nt, combine):
    # (n + 1) / 2 keeps the colour positive; decoded below
    geo = nt.nodes.new("ShaderNodeNewGeometry")
    sep = nt.nodes.new("ShaderNodeSeparateXYZ")
    nt.links.new(geo.outputs["Normal"], sep.inputs["Vector"])
    for axis in "XYZ":
        m = nt.nodes.new("ShaderNodeMath")
        m.operation = "MULTIPLY_ADD"
        m.inputs[1].default_value = 0.5
        m.inputs[2].default_value = 0.5
        nt.links.new(sep.outputs[axis], m.inputs[0])
        nt.links.new(m.outputs["Value"], combine.inputs[axis])


def _labels_as_emission(scene, vl, path: Path) -> dict:
    world = scene.world
    strength = None
    if world is not None and world.node_tree is not None and world.node_tree.nodes.get("Background"):
        bg = world.node_tree.nodes["Background"]
        strength = bg.inputs["Strength"].default_value
        bg.inputs["Strength"].default_value = 0.0  # no surface -> exact zeros
    try:
        vl.material_override = _emission_material("sim2real_label_index_depth", _index_depth)
        _render_to(scene, path)
        a = read_exr(path)
        vl.material_override = _emission_material("sim2real_label_normal", _normal)
        _render_to(scene, path)
        b = read_exr(path)
    finally:
        if strength is not None:
            world.node_tree.nodes["Background"].inputs["Strength"].default_value = strength
    from ..imaging.postprocess import channel, NO_SURFACE_BLENDER

    index = channel(a, "Combined.R")
    hit = index > 0.5
    depth = channel(a, "Combined.G")
    out = {"Labels.IndexOB.X": index, "Labels.Depth.Z": np.where(hit, depth, NO_SURFACE_BLENDER * 10)}
    for c, axis in zip("RGB", "XYZ"):
        out[f"Labels.Normal.{axis}"] = np.where(hit, channel(b, f"Combined.{c}") * 2 - 1, 0)
    return out


def blender_version_string() -> str:
    return require_bpy().app.version_string


def quiet_render_output():
    """Silence Blender's per-render 'Fra:' lines on stdout (keeps progress bars readable)."""
    return _Silence()


class _Silence:
    def __enter__(self):
        self.fd = os.dup(1)
        self.null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(self.null, 1)
        return self

    def __exit__(self, *exc):
        os.dup2(self.fd, 1)
        os.close(self.fd)
        os.close(self.null)
        return False
