"""Build a SceneDescription in Blender: meshes, materials, camera, scope light, world.

Everything created lives in one collection (``Sim2Real``) and is tracked, so
:func:`clear` removes exactly what was built (no growth over long runs, and the user's
own objects in an open .blend are never touched).
"""

from __future__ import annotations

import numpy as np

from ..scene.description import Material, MeshObject, SceneDescription
from ..scene.geometry import BLENDER_TO_OPENCV
from . import compat, require_bpy

COLLECTION = "Sim2Real"
TAG = "sim2real"  # custom property on every datablock we create


def _tag(idb):
    idb[TAG] = True
    return idb


def collection(scene=None):
    bpy = require_bpy()
    scene = scene or bpy.context.scene
    col = bpy.data.collections.get(COLLECTION)
    if col is None:
        col = _tag(bpy.data.collections.new(COLLECTION))
    if col.name not in scene.collection.children:
        scene.collection.children.link(col)
    return col


def clear() -> None:
    """Remove every datablock built by sim2real (objects, meshes, materials, lights, cameras)."""
    bpy = require_bpy()
    for coll in (bpy.data.objects, bpy.data.meshes, bpy.data.materials, bpy.data.lights, bpy.data.cameras,
                 bpy.data.worlds):
        for idb in [x for x in coll if x.get(TAG)]:
            coll.remove(idb, do_unlink=True)
    for img in [i for i in bpy.data.images if i.type == "IMAGE" and i.users == 0]:
        bpy.data.images.remove(img)


def make_material(name: str, m: Material):
    bpy = require_bpy()
    mat = _tag(bpy.data.materials.new(name))
    compat.use_nodes(mat)
    nt = mat.node_tree
    bsdf = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    compat.set_input(bsdf, "Roughness", m.roughness)
    compat.set_input(bsdf, "Metallic", m.metallic)
    compat.set_input(bsdf, ["Specular IOR Level", "Specular"], m.specular)
    color = (*m.base_color, 1.0)
    if m.color2 is not None and m.noise_strength > 0:
        coord = nt.nodes.new("ShaderNodeTexCoord")
        mapping = nt.nodes.new("ShaderNodeMapping")
        mapping.inputs["Location"].default_value = m.texture_offset
        nt.links.new(coord.outputs["Object"], mapping.inputs["Vector"])
        noise = nt.nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = m.noise_scale
        noise.inputs["Detail"].default_value = 2.0
        nt.links.new(mapping.outputs["Vector"], noise.inputs["Vector"])
        ramp = nt.nodes.new("ShaderNodeMapRange")
        ramp.inputs["From Min"].default_value = 0.3
        ramp.inputs["From Max"].default_value = 0.7
        ramp.inputs["To Max"].default_value = m.noise_strength
        nt.links.new(noise.outputs["Fac"], ramp.inputs["Value"])
        mix = nt.nodes.new("ShaderNodeMix")
        mix.data_type = "RGBA"
        compat.socket(mix.inputs, ["A_Color"]).default_value = color
        compat.socket(mix.inputs, ["B_Color"]).default_value = (*m.color2, 1.0)
        nt.links.new(ramp.outputs["Result"], compat.socket(mix.inputs, ["Factor_Float"]))
        nt.links.new(compat.socket(mix.outputs, ["Result_Color"]), bsdf.inputs["Base Color"])
        if m.bump > 0:
            bump_noise = nt.nodes.new("ShaderNodeTexNoise")
            bump_noise.inputs["Scale"].default_value = m.noise_scale * 4
            bump_noise.inputs["Detail"].default_value = 1.0
            nt.links.new(mapping.outputs["Vector"], bump_noise.inputs["Vector"])
            bump = nt.nodes.new("ShaderNodeBump")
            bump.inputs["Strength"].default_value = min(1.0, 0.3 * m.bump)
            bump.inputs["Distance"].default_value = 0.0005
            nt.links.new(bump_noise.outputs["Fac"], bump.inputs["Height"])
            nt.links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    else:
        bsdf.inputs["Base Color"].default_value = color
    return mat


def make_mesh_object(o: MeshObject, col):
    bpy = require_bpy()
    mesh = _tag(bpy.data.meshes.new(o.name))
    v = np.ascontiguousarray(o.vertices, np.float32)
    f = np.ascontiguousarray(o.faces, np.int32)
    mesh.vertices.add(len(v))
    mesh.vertices.foreach_set("co", v.ravel())
    mesh.loops.add(f.size)
    mesh.loops.foreach_set("vertex_index", f.ravel())
    mesh.polygons.add(len(f))
    mesh.polygons.foreach_set("loop_start", np.arange(0, f.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    compat.set_smooth(mesh, o.smooth)
    if o.face_parts is not None and o.part_materials:
        for k, m in enumerate(o.part_materials):
            mesh.materials.append(make_material(f"{o.name}.{k}", m))
        mesh.polygons.foreach_set("material_index", np.ascontiguousarray(o.face_parts, np.int32))
    else:
        mesh.materials.append(make_material(o.name, o.material))
    obj = _tag(bpy.data.objects.new(o.name, mesh))
    obj.pass_index = o.instance_id
    obj["sim2real_class_id"] = o.class_id
    col.objects.link(obj)
    return obj


def camera_to_blender_matrix(camera_to_world_cv: np.ndarray):
    """Blender's camera matrix_world (camera looks along its local -z, y up) from an OpenCV pose."""
    return camera_to_world_cv @ BLENDER_TO_OPENCV


def make_camera(desc: SceneDescription, col, scene):
    bpy = require_bpy()
    from mathutils import Matrix

    c = desc.camera
    cam = _tag(bpy.data.cameras.new("scope"))
    cam.sensor_fit = "HORIZONTAL"
    cam.angle = c.hfov_rad
    cam.clip_start = c.clip_start_m
    cam.clip_end = c.clip_end_m
    obj = _tag(bpy.data.objects.new("scope", cam))
    obj.matrix_world = Matrix(camera_to_blender_matrix(c.camera_to_world).tolist())
    col.objects.link(obj)
    scene.camera = obj
    li = desc.light
    light = _tag(bpy.data.lights.new("scope_light", "SPOT"))
    light.energy = li.energy_w
    light.color = li.color
    light.spot_size = li.spot_size_rad
    light.spot_blend = li.spot_blend
    light.shadow_soft_size = li.radius_m
    lobj = _tag(bpy.data.objects.new("scope_light", light))
    col.objects.link(lobj)
    lobj.parent = obj  # the light rides on the scope, pointing where it looks
    world = _tag(bpy.data.worlds.new("sim2real_world"))
    compat.use_nodes(world)
    bg = world.node_tree.nodes.get("Background")
    if bg is not None:
        bg.inputs["Color"].default_value = (0.3, 0.08, 0.06, 1.0)
        bg.inputs["Strength"].default_value = li.ambient
    scene.world = world
    return obj


def build(desc: SceneDescription, scene=None):
    """Create the scene of ``desc`` (after removing any previous sim2real build)."""
    bpy = require_bpy()
    scene = scene or bpy.context.scene
    clear()
    col = collection(scene)
    objs = [make_mesh_object(o, col) for o in desc.objects]
    make_camera(desc, col, scene)
    return objs
