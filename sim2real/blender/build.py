"""Build a SceneDescription in Blender: meshes, materials, camera, scope light, world.

Everything created lives in one collection (``Sim2Real``) and is tracked, so
:func:`clear` removes exactly what was built (no growth over long runs, and the user's
own objects in an open .blend are never touched).
"""

from __future__ import annotations

from statistics import NormalDist

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


class _Graph:
    """A few helpers that keep the shader graph below readable (node names valid in 4.2-5.0)."""

    def __init__(self, nt):
        self.nt = nt

    def node(self, kind, **inputs):
        n = self.nt.nodes.new(kind)
        for name, value in inputs.items():
            n.inputs[name.replace("_", " ")].default_value = value
        return n

    def link(self, out, inp):
        self.nt.links.new(out, inp)

    def coords(self, coord_out, offset):
        mapping = self.node("ShaderNodeMapping")
        mapping.inputs["Location"].default_value = offset
        self.link(coord_out, mapping.inputs["Vector"])
        return mapping.outputs["Vector"]

    def noise(self, vec, scale, detail=2.0, roughness=0.5):
        n = self.node("ShaderNodeTexNoise", Scale=scale, Detail=detail, Roughness=roughness)
        self.link(vec, n.inputs["Vector"])
        return n

    def voronoi(self, vec, scale, feature="F1"):
        v = self.nt.nodes.new("ShaderNodeTexVoronoi")
        v.feature = feature
        v.inputs["Scale"].default_value = scale
        self.link(vec, v.inputs["Vector"])
        return v

    def map_range(self, value, from_min, from_max, to_min=0.0, to_max=1.0):
        m = self.node("ShaderNodeMapRange")
        m.clamp = True
        for k, v in (("From Min", from_min), ("From Max", from_max), ("To Min", to_min), ("To Max", to_max)):
            m.inputs[k].default_value = v
        self.link(value, m.inputs["Value"])
        return m.outputs["Result"]

    def mix(self, a, b, factor, blend="MIX"):
        """RGBA mix; ``a``, ``b`` sockets or colours, ``factor`` a socket or a number."""
        m = self.nt.nodes.new("ShaderNodeMix")
        m.data_type = "RGBA"
        m.blend_type = blend
        for ident, x in (("A_Color", a), ("B_Color", b), ("Factor_Float", factor)):
            sock = compat.socket(m.inputs, [ident])
            if isinstance(x, (int, float)):
                sock.default_value = x
            elif isinstance(x, tuple):
                sock.default_value = (*x[:3], 1.0)
            else:
                self.link(x, sock)
        return compat.socket(m.outputs, ["Result_Color"])


def _tail(share: float, sd: float) -> float:
    """The value of a noise with standard deviation ``sd`` exceeded on ``share`` of a surface."""
    return 0.5 + sd * NormalDist().inv_cdf(float(np.clip(1.0 - share, 0.001, 0.999)))


def _patch(g: _Graph, coord_out, rng, share: float, scale: float):
    """A factor 0..1 covering about ``share`` of the surface in irregular patches."""
    vec = g.coords(coord_out, tuple(rng.uniform(-50, 50, 3)))
    fac = g.noise(vec, scale, detail=4.0, roughness=0.6).outputs["Fac"]
    # this noise is close to normal with mean 0.5 and sd 0.068 (measured over a rendered plane)
    t = _tail(share, 0.068)
    return g.map_range(fac, t - 0.01, t + 0.02)


def make_material(name: str, m: Material):
    """A Principled BSDF with procedural tissue detail (all image-only: labels use a flat override)."""
    bpy = require_bpy()
    mat = _tag(bpy.data.materials.new(name))
    compat.use_nodes(mat)
    nt = mat.node_tree
    g = _Graph(nt)
    bsdf = next(n for n in nt.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    compat.set_input(bsdf, "Roughness", m.roughness)
    compat.set_input(bsdf, "Metallic", m.metallic)
    compat.set_input(bsdf, ["Specular IOR Level", "Specular"], m.specular)
    if m.coat > 0:  # a thin wet film: small, sharp highlights over a rougher tissue
        compat.set_input(bsdf, ["Coat Weight", "Clearcoat"], m.coat)
        compat.set_input(bsdf, ["Coat Roughness", "Clearcoat Roughness"], m.coat_roughness)
        if bsdf.inputs.get("Coat IOR") is not None:
            bsdf.inputs["Coat IOR"].default_value = 1.33  # water
    if m.alpha < 1:  # thin translucent membranes: Cycles lets the rest of a camera ray through
        compat.set_input(bsdf, "Alpha", m.alpha)
        if m.color2 is None and m.noise_strength > 0:  # patchy: thinner and thicker parts
            vec = g.coords(g.node("ShaderNodeTexCoord").outputs["Object"], m.texture_offset)
            fac = g.noise(vec, m.noise_scale, detail=2.0).outputs["Fac"]
            g.link(g.map_range(fac, 0.35, 0.65, m.alpha * (1 - m.noise_strength), m.alpha), bsdf.inputs["Alpha"])
    textured = (m.color2 is not None and m.noise_strength > 0) or m.vessels or m.lobules or m.fat_patches \
        or m.blood or m.bile or m.burn or m.film or m.bands or (m.streaks and m.coat > 0)
    if not textured:
        bsdf.inputs["Base Color"].default_value = (*m.base_color, 1.0)
        return mat
    # the pattern draws are a pure function of the material (same description -> same look)
    rng = np.random.default_rng(np.frombuffer(np.asarray(m.texture_offset, np.float64).tobytes(), np.uint32))
    coord = g.node("ShaderNodeTexCoord").outputs["Object"]
    vec = g.coords(coord, m.texture_offset)
    color = (*m.base_color, 1.0)
    mottle = None
    if m.color2 is not None and m.noise_strength > 0:  # large-scale mottling
        mottle = g.noise(vec, m.noise_scale).outputs["Fac"]
        fac = g.map_range(mottle, 0.3, 0.7, 0.0, m.noise_strength)
        color = g.mix(tuple(m.base_color), tuple(m.color2), fac)
    if m.lobules > 0:  # lobules: cells bright at the centre, darker at the borders (colour only: a
        # Voronoi in the bump's height would be evaluated three times, ~8 % of the image render)
        dist = g.voronoi(vec, m.lobule_scale, "F1").outputs["Distance"]
        shade = g.map_range(dist, 0.1, 0.75, 1.0, 1.0 - 0.6 * m.lobules)
        color = g.mix(color, shade, 1.0, "MULTIPLY")
    if m.fat_patches > 0:
        color = g.mix(color, tuple(m.fat_color), _patch(g, coord, rng, m.fat_patches, m.noise_scale * 1.5))
    if m.vessels > 0:  # meandering vessels: thin iso-lines of a smooth noise, a coarse and a fine net
        for scale, width, weight in ((m.noise_scale * 0.5, 0.03, 1.0), (m.noise_scale * 1.6, 0.02, 0.6)):
            n = g.noise(g.coords(coord, tuple(rng.uniform(-50, 50, 3))), scale, detail=1.0, roughness=0.5)
            off = g.node("ShaderNodeMath")
            off.operation = "SUBTRACT"
            g.link(n.outputs["Fac"], off.inputs[0])
            off.inputs[1].default_value = 0.5
            ab = g.node("ShaderNodeMath")
            ab.operation = "ABSOLUTE"
            g.link(off.outputs["Value"], ab.inputs[0])
            color = g.mix(color, tuple(m.vessel_color), g.map_range(ab.outputs["Value"], 0.0, width,
                                                                     m.vessels * weight, 0.0))
    if m.bile > 0:
        color = g.mix(color, (0.22, 0.17, 0.02), g.map_range(
            _patch(g, coord, rng, m.bile, m.noise_scale * 0.8), 0.0, 1.0, 0.0, 0.8))
    if m.blood > 0:
        color = g.mix(color, (0.09, 0.004, 0.004), g.map_range(
            _patch(g, coord, rng, m.blood, m.noise_scale * 0.4), 0.0, 1.0, 0.0, 0.9))
    relief = g.noise(vec, m.noise_scale * 4, detail=1.0).outputs["Fac"] if m.bump > 0 else None
    color = _add_looks(g, coord, vec, m, color, bsdf, mottle, relief)
    if isinstance(color, tuple):
        bsdf.inputs["Base Color"].default_value = color
    else:
        g.link(color, bsdf.inputs["Base Color"])
    if m.bump > 0:
        bump_noise = relief
        bump = g.node("ShaderNodeBump", Strength=min(1.0, 0.3 * m.bump), Distance=0.0005)
        g.link(bump_noise, bump.inputs["Height"])
        g.link(bump.outputs["Normal"], bsdf.inputs["Normal"])
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
    obj["sim2real_labelled"] = bool(o.labelled)  # False: hidden from camera rays in the label render
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


BURN_RIM = (0.42, 0.30, 0.17)  # pale tan, linear RGB: the dried, coagulated edge of a cautery burn
# standard deviations of the noise texture's Fac (mean 0.5, close to normal), measured over a
# rendered plane as in _patch: detail 2 (the mottling) and detail 1 (the bump relief)
_SD_DETAIL2, _SD_DETAIL1 = 0.082, 0.093


def _stretched(g: _Graph, coord_out, rng, stretch: float):
    """Object coordinates, offset and turned at random, squeezed ``stretch``-fold across one axis:
    a noise on them makes streaks along that axis that follow the surface."""
    mapping = g.node("ShaderNodeMapping")
    mapping.inputs["Location"].default_value = tuple(rng.uniform(-50, 50, 3))
    mapping.inputs["Rotation"].default_value = tuple(rng.uniform(0, 2 * np.pi, 3))
    mapping.inputs["Scale"].default_value = (1.0, stretch, stretch)
    g.link(coord_out, mapping.inputs["Vector"])
    return mapping.outputs["Vector"]


def _add_looks(g: _Graph, coord_out, vec, m: Material, color, bsdf, mottle=None, relief=None):
    """Layered pale bands, whitish connective film, cautery burns (dark core, pale tan rim) on the
    colour, and wet streaks on the coat weight. To stay cheap, film and burns reuse noises the
    material has anyway: the film covers the brightest part of the mottling (``mottle``), the
    burns the highest points of the fine bump relief (``relief``, 2-6 mm features); only the
    streaks and the bands add a one-octave noise each."""
    rng = np.random.default_rng(m.looks_seed)
    if m.bands > 0:  # pale layered sheets: meandering bands
        wave = g.nt.nodes.new("ShaderNodeTexWave")
        wave.wave_type = "BANDS"
        wave.bands_direction = ("X", "Y", "Z")[int(rng.integers(3))]
        for k, v in (("Scale", m.noise_scale * 0.4), ("Distortion", 12.0), ("Detail", 0.0)):
            wave.inputs[k].default_value = v
        g.link(g.coords(coord_out, tuple(rng.uniform(-50, 50, 3))), wave.inputs["Vector"])
        pale = tuple(min(1.0, c * 1.2 + 0.04) for c in m.base_color)
        color = g.mix(color, pale, g.map_range(wave.outputs["Fac"], 0.5, 1.0, 0.0, m.bands))
    if m.film > 0:  # whitish, translucent-looking film over the bright mottling, never fully opaque
        if mottle is None:
            mottle = g.noise(vec, m.noise_scale).outputs["Fac"]
        t = 1.0 - _tail(m.film, _SD_DETAIL2)  # the low tail: where the mottling keeps the base colour
        color = g.mix(color, tuple(m.film_color), g.map_range(mottle, t - 0.05, t + 0.05, 0.5, 0.0))
    if m.burn > 0:  # small burns: a dark charred core inside a pale tan rim
        if relief is None:
            relief = g.noise(vec, m.noise_scale * 4, detail=1.0).outputs["Fac"]
        t, t_rim = _tail(m.burn, _SD_DETAIL1), _tail(min(0.999, m.burn * 2.5), _SD_DETAIL1)
        color = g.mix(color, BURN_RIM, g.map_range(relief, t_rim - 0.005, t_rim + 0.01, 0.0, 0.85))
        color = g.mix(color, tuple(m.burn_color), g.map_range(relief, t - 0.005, t + 0.01, 0.0, 1.0))
    if m.streaks > 0 and m.coat > 0:  # wet streaks: the coat only along a stretched noise
        n = g.noise(_stretched(g, coord_out, rng, 6.0), m.noise_scale * 2, detail=0.0, roughness=0.5)
        weight = g.map_range(n.outputs["Fac"], 0.5, 0.62, m.coat * (1.0 - m.streaks), m.coat)
        g.link(weight, compat.socket(bsdf.inputs, ["Coat Weight", "Clearcoat"]))
    return color
