"""The seeded sampler: (config, seed, index) -> SceneDescription. Plain numpy, no bpy.

Every random draw comes from ``numpy.random.SeedSequence([seed, index])``, split into one
stream per concern (shapes, materials, camera, instruments, light), so the same
(config, seed, index) always gives the same scene, whichever process renders it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import numpy as np

from ..classes import ClassTable
from ..config import class_table
from ..defaults import TISSUES
from ..errors import Sim2RealError
from . import shapes
from .description import Camera, CameraEffects, Instrument, Light, Material, MeshObject, RenderSettings, SceneDescription
from .geometry import RayCaster, inside_closed_mesh, intrinsics, look_at_opencv, normalize, vertex_normals
from .meshio import load_mesh


log = logging.getLogger(__name__)

MAX_TOOL_DRAWS = 50  # tip/port draws per instrument before it is left out (and the log says why)


class SamplingError(Sim2RealError):
    pass


def _u(rng: np.random.Generator, r) -> float:
    lo, hi = r
    return float(lo if lo == hi else rng.uniform(lo, hi))


def _color(rng, rng_range) -> np.ndarray:
    lo, hi = np.asarray(rng_range[0]), np.asarray(rng_range[1])
    return lo + (hi - lo) * rng.random(3)


def sample_material(rng: np.random.Generator, sec: dict) -> Material:
    """One tissue look from a tissue section of the preset (the 'material' stream only)."""
    base = _color(rng, sec["color"])
    base = np.clip(base * (1 + rng.normal(0, _u(rng, sec["color_variation"]), 3)), 0, 1)
    strength = _u(rng, sec["noise_strength"])
    color2 = np.clip(base * rng.uniform(0.45, 0.75) + rng.normal(0, 0.02, 3), 0, 1)
    fat_lo, fat_hi = np.asarray(sec["fat_color"][0], float), np.asarray(sec["fat_color"][1], float)
    fat = np.clip(fat_lo + (fat_hi - fat_lo) * rng.uniform(0.0, 1.0) + rng.normal(0, 0.02, 3), 0, 1)  # one shade
    return Material(
        base_color=tuple(float(c) for c in base),
        roughness=_u(rng, sec["roughness"]),
        specular=_u(rng, sec["specular"]),
        color2=tuple(float(c) for c in color2),
        noise_scale=float(sec["noise_scale"]) * rng.uniform(0.8, 1.25),
        noise_strength=strength,
        bump=_u(rng, sec["bump"]),
        texture_offset=tuple(float(x) for x in rng.uniform(-100, 100, 3)),
        coat=_u(rng, sec["coat"]),
        coat_roughness=_u(rng, sec["coat_roughness"]),
        vessels=_u(rng, sec["vessels"]),
        vessel_color=tuple(float(c) for c in _color(rng, sec["vessel_color"])),
        lobules=_u(rng, sec["lobules"]),
        lobule_scale=float(sec["lobule_scale"]) * rng.uniform(0.8, 1.25),
        fat_patches=_u(rng, sec["fat_patches"]),
        fat_color=tuple(float(c) for c in fat),
        blood=_u(rng, sec["blood"]),
        bile=_u(rng, sec["bile"]),
    )


def _shade(rng, rng_range) -> tuple[float, float, float]:
    """One point on the line from the low to the high colour (keeps a range's hue: no green steel)."""
    lo, hi = np.asarray(rng_range[0]), np.asarray(rng_range[1])
    return tuple(float(c) for c in lo + (hi - lo) * rng.random())


def sample_tool_materials(rng: np.random.Generator, ic: dict) -> tuple[Material, Material]:
    """(shaft, tip): a matte black insulated shaft and brushed-metal jaws/hook."""
    shaft = Material(base_color=_shade(rng, ic["shaft_color"]),
                     roughness=_u(rng, ic["shaft_roughness"]), specular=0.3, metallic=0.0,
                     coat=float(rng.uniform(0.0, 0.3)), coat_roughness=float(rng.uniform(0.2, 0.4)))
    tip = Material(base_color=_shade(rng, ic["tip_color"]),
                   roughness=_u(rng, ic["tip_roughness"]), specular=0.5, metallic=1.0)
    return shaft, tip


def sample_camera_effects(rng: np.random.Generator, ce: dict, width: int) -> CameraEffects | None:
    """Image-only camera effects of one sample (None when switched off)."""
    if not ce["enabled"]:
        return None
    lo, hi = ce["jpeg_quality"]
    return CameraEffects(
        vignetting=_u(rng, ce["vignetting"]),
        defocus_px=_u(rng, ce["defocus_px"]) * width / 452,
        noise=_u(rng, ce["noise"]),
        gamma=_u(rng, ce["gamma"]),
        gains=(_u(rng, ce["white_balance"]), 1.0, _u(rng, ce["white_balance"])),
        saturation=_u(rng, ce["saturation"]),
        jpeg_quality=int(rng.integers(lo, hi + 1)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


@functools.lru_cache(maxsize=32)
def _cached_mesh(path: str, scale: float):
    v, f = load_mesh(path)
    return v * scale, f


class Sampler:
    """Draws scene descriptions for one config; ``sampler(seed, index)``."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.table: ClassTable = class_table(cfg)
        if cfg["scene"]["mode"] == "meshes":
            self._patient = self._load_patient()

    @staticmethod
    def streams(seed: int, index: int) -> dict[str, np.random.Generator]:
        """One independent generator per concern, from (seed, index) alone."""
        ss = np.random.SeedSequence([int(seed), int(index)])
        # appended names only: a new stream never changes what the earlier ones draw
        names = ("shape", "material", "camera", "tools", "light", "render", "appearance", "camera_effects",
                 "looks", "fov")
        return dict(zip(names, (np.random.default_rng(s) for s in ss.spawn(len(names)))))

    def __call__(self, seed: int, index: int) -> SceneDescription:
        r = self.streams(seed, index)
        cfg = self.cfg
        if cfg["scene"]["mode"] == "procedural":
            objects, wall = self._procedural(r["shape"], r["material"], r["looks"])
        else:
            objects, wall = self._patient_scene(r["shape"], r["material"], r["looks"])
        caster = self._caster(objects)
        camera, target_class, target_point = self.camera(r["camera"], objects, wall, caster)
        instruments, requested, note = self._instruments(r["tools"], camera, objects, wall, caster)
        if note:
            log.warning("sample %d (seed %d): %s", index, seed, note)
        for inst, shaft, tip in instruments:
            # the look of the tools comes from its own stream: placement draws stay as they were
            shaft.material, tip.material = sample_tool_materials(r["appearance"], cfg["instruments"])
            if tip.part_materials:  # the tip's metal and insulated parts take the same looks (a clip keeps its own)
                looks = dict(zip(shapes.TIP_PARTS, tip.part_materials), metal=tip.material, insulation=shaft.material)
                tip.part_materials = tuple(looks[p] for p in shapes.TIP_PARTS)
            objects += [shaft, tip]
        effects = sample_camera_effects(r["camera_effects"], cfg["camera_effects"], camera.width)
        return SceneDescription(index=index, seed=seed, objects=objects, camera=camera, light=self.light(r["light"]),
                                render=self.render_settings(r["render"], r["fov"]),
                                instruments=[i for i, _, _ in instruments],
                                target_class=target_class, target_point=target_point, effects=effects,
                                instruments_requested=requested, instruments_note=note)

    def render_settings(self, rng: np.random.Generator, rfov: np.random.Generator | None = None) -> RenderSettings:
        """Render settings of one sample: the circular field of view and the noise seed are drawn;
        with ``rfov`` (the "fov" stream) a share ``render.fov_full_frame`` of samples has no circle
        (the circle is drawn all the same, so the noise seed does not depend on it)."""
        rs = self.cfg["render"]
        w, h = rs["resolution"]
        fov = None
        if rs["fov_mask"]:
            diag = float(np.hypot(w, h))
            off = rs["fov_mask_offset"]
            fov = (w / 2 + rng.uniform(-off, off) * w, h / 2 + rng.uniform(-off, off) * h,
                   _u(rng, rs["fov_mask_radius"]) * diag)
        if fov is not None and rfov is not None and rfov.random() < rs["fov_full_frame"]:
            fov = None
        return RenderSettings(samples=rs["samples"], denoise=rs["denoise"], max_bounces=rs["max_bounces"],
                              threads=rs["threads"], device=rs["device"], exposure=rs["exposure"],
                              noise_seed=int(rng.integers(0, 2**31 - 1)), fov_mask=fov)

    # --- organs -------------------------------------------------------------------------

    def _procedural(self, rng, rmat, rlooks=None):
        cfg = self.cfg
        objs: list[MeshObject] = []
        nid = iter(range(1, 65536))
        lc = cfg["liver"]
        lv, lf, info = shapes.liver(rng, _u(rng, lc["size_m"]), _u(rng, lc["left_lobe_fraction"]),
                                    _u(rng, lc["edge_sharpness"]), _u(rng, lc["shape_noise_m"]))
        a, b = info["semi_axes"]
        mats = {t: sample_looks(rlooks, cfg[t], sample_material(rmat, cfg[t])) for t in TISSUES}
        if lc["enabled"]:
            objs.append(MeshObject("liver", self.table.id_of("liver"), next(nid), lv, lf, mats["liver"]))
        gc = cfg["gallbladder"]
        if gc["enabled"]:
            length, radius = _u(rng, gc["length_m"]), _u(rng, gc["radius_m"])
            gv, gf = shapes.gallbladder(rng, length, radius)
            tilt = rng.uniform(0.15, 0.45)  # neck up into the liver bed
            rot = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
            gx = info["split_x"] - rng.uniform(0.25, 0.5) * (info["split_x"] + a)  # under the right lobe
            fundus_y = -b - _u(rng, gc["protrusion_m"])
            centre = np.array([gx, fundus_y + length / 2 * np.cos(tilt), -radius * 0.55])
            objs.append(MeshObject("gallbladder", self.table.id_of("gallbladder"), next(nid),
                                   gv @ rot.T + centre, gf, mats["gallbladder"]))
        wc = cfg["abdominal_wall"]
        size = _u(rng, wc["size_m"])
        wall_axes = np.array([size / 2, size / 2 * 1.1, size / 2 * 0.5])
        wall_centre = np.array([0.0, -0.04, 0.02])
        fc = cfg["fat"]
        if fc["enabled"]:
            fv, ff = shapes.lumpy_ellipsoid(rng, [a * 1.3, b * 0.9, 0.03], _u(rng, fc["lumpiness_m"]))
            fv += [0, -b - 0.05, -0.055]
            objs.append(MeshObject("fat", self.table.id_of("fat"), next(nid), fv, ff, mats["fat"]))
        gl = cfg["ligament"]
        if gl["enabled"]:
            top = wall_centre[2] + wall_axes[2] + 0.02
            mv, mf = shapes.ligament(rng, info["split_x"], -b * 0.3, _u(rng, gl["width_m"]) + b * 0.5, 0.0, top)
            objs.append(MeshObject("ligament", self.table.id_of("ligament"), next(nid), mv, mf, mats["ligament"]))
        if wc["enabled"]:
            wv, wf = shapes.lumpy_ellipsoid(rng, wall_axes, 0.006, res=(96, 48), inward=True)
            objs.append(MeshObject("abdominal_wall", self.table.id_of("abdominal_wall"), next(nid),
                                   wv + wall_centre, wf, mats["abdominal_wall"]))
        return objs, (wall_centre, wall_axes)

    def _load_patient(self):
        return [(m, *_cached_mesh(m["path"], float(m["scale"]))) for m in self.cfg["meshes"]]

    def _patient_scene(self, rng, rmat, rlooks=None):
        cfg = self.cfg
        objs: list[MeshObject] = []
        allv = np.concatenate([v for _, v, _ in self._patient])
        centre = (allv.min(0) + allv.max(0)) / 2
        half = (allv.max(0) - allv.min(0)) / 2
        mats = {}
        for i, (m, v, f) in enumerate(self._patient):
            look = m["material"] or (m["class"] if m["class"] in TISSUES else "ligament")
            if look not in mats:
                mats[look] = sample_looks(rlooks, cfg[look], sample_material(rmat, cfg[look]))
            objs.append(MeshObject(f"{m['class']}_{i}", self.table.id_of(m["class"]), i + 1, v - centre, f,
                                   mats[look]))
        wall_axes = half * 1.25 + 0.06
        wall_centre = np.zeros(3)
        if cfg["abdominal_wall"]["enabled"]:
            wv, wf = shapes.lumpy_ellipsoid(rng, wall_axes, 0.006, res=(96, 48), inward=True)
            objs.append(MeshObject("abdominal_wall", self.table.id_of("abdominal_wall"), len(objs) + 1,
                                   wv, wf, sample_looks(rlooks, cfg["abdominal_wall"],
                                                        sample_material(rmat, cfg["abdominal_wall"]))))
        return objs, (wall_centre, wall_axes)

    def _caster(self, objects) -> RayCaster:
        """Ray casts against every organ (not the cavity wall); patient organs never change, so
        their caster is built once."""
        if self.cfg["scene"]["mode"] == "meshes" and getattr(self, "_organ_caster", None) is not None:
            return self._organ_caster
        solids = [o for o in objects if o.name != "abdominal_wall"]
        caster = RayCaster(np.concatenate([o.vertices[o.faces] for o in solids]) if solids else np.zeros((0, 3, 3)))
        if self.cfg["scene"]["mode"] == "meshes":
            self._organ_caster = caster
        return caster

    # --- camera -------------------------------------------------------------------------

    def camera(self, rng, objects, wall, caster: RayCaster | None = None):
        """A free scope pose aimed at a target organ; ``wall`` = (centre, semi-axes) of the cavity."""
        cc = self.cfg["camera"]
        w, h = self.cfg["render"]["resolution"]
        wall_centre, wall_axes = wall
        solids = [o for o in objects if o.name != "abdominal_wall"]
        caster = caster or self._caster(objects)
        candidates = [t for t in self.cfg["scene"]["target"] if any(o.class_id == self.table.id_of(t) for o in objects)]
        if not candidates:
            raise SamplingError(f"scene.target {self.cfg['scene']['target']} names no object present in the scene")
        mean_dir = normalize(np.asarray(cc["direction"], float))
        spread = np.deg2rad(cc["direction_spread_deg"])
        for _ in range(cc["max_tries"]):
            tclass = candidates[rng.integers(len(candidates))]
            tobjs = [o for o in objects if o.class_id == self.table.id_of(tclass)]
            o = tobjs[rng.integers(len(tobjs))]
            vn = vertex_normals(o.vertices, o.faces)
            d = _cone(rng, mean_dir, spread)
            facing = np.flatnonzero(vn @ d > 0.3)
            if len(facing) == 0:
                continue
            target = o.vertices[facing[rng.integers(len(facing))]]
            eye = target + d * _u(rng, cc["distance_m"])
            if np.sum(((eye - wall_centre) / (wall_axes - 0.015)) ** 2) >= 1:
                continue  # outside (or too close to) the abdominal wall
            if any(inside_closed_mesh(eye, ob.vertices[ob.faces]) for ob in solids if len(ob.faces) > 50):
                continue
            ray = normalize(target - eye)
            first = caster.first_hit(eye, ray)
            if first < np.linalg.norm(target - eye) - 0.002:
                continue  # something sits between the scope and its target
            if first < cc["clip_start_m"] * 2:
                continue
            hfov = np.deg2rad(_u(rng, cc["fov_deg"]))
            roll = np.deg2rad(_u(rng, cc["roll_deg"]))
            c2w = look_at_opencv(eye, target, up=(0, 0, 1), roll=roll)
            cam = Camera(width=w, height=h, k=intrinsics(w, h, hfov), camera_to_world=c2w, hfov_rad=hfov,
                         clip_start_m=cc["clip_start_m"], clip_end_m=cc["clip_end_m"])
            return cam, tclass, target
        raise SamplingError(f"no free camera pose found in {cc['max_tries']} draws; widen camera.distance_m or "
                            f"camera.direction_spread_deg, or raise camera.max_tries")

    # --- instruments --------------------------------------------------------------------

    def _instruments(self, rng, camera: Camera, objects, wall, caster: RayCaster):
        """Place the sample's instruments; returns ([(Instrument, shaft, tip)], requested, note).

        Procedural scenes enter through the preset's trocar ports (wall-size units on the
        anterior wall). Patient-mesh scenes have no anatomical "anterior" to go by, so their
        ports lie on the cavity wall around the scope's own port (where the line of sight
        leaves the wall behind the camera), to the left and right of it as in a
        cholecystectomy, and their tips stop short of the organ surface the scope sees.
        """
        ic = self.cfg["instruments"]
        lo, hi = ic["count"]
        n = int(rng.integers(lo, hi + 1))
        wall_centre, wall_axes = wall
        meshes = self.cfg["scene"]["mode"] == "meshes"
        kinv = np.linalg.inv(camera.k)
        c2w = camera.camera_to_world
        cam_pos = c2w[:3, 3]
        scope_port = _ellipsoid_exit(cam_pos, -c2w[:3, 2], wall_centre, wall_axes) if meshes else None
        out, shafts = [], []
        failed: dict[str, int] = {}
        next_id = max(o.instance_id for o in objects) + 1
        for i in range(n):
            kind = ic["kinds"][rng.integers(len(ic["kinds"]))]
            for _attempt in range(MAX_TOOL_DRAWS):
                frac = ic["tip_in_view"]
                u = camera.width * (0.5 + frac * rng.uniform(-0.5, 0.5))
                v = camera.height * (0.5 + frac * rng.uniform(-0.5, 0.5))
                ray_c = kinv @ [u, v, 1.0]
                dist = _u(rng, ic["tip_distance_m"])
                ray_w = normalize(c2w[:3, :3] @ ray_c)
                hit = caster.first_hit(cam_pos, ray_w)
                scale = float(np.linalg.norm(ray_c / ray_c[2]))  # camera z -> distance along the ray
                if meshes and np.isfinite(hit):
                    # stop a few millimetres short of the surface the scope sees there
                    dist = min(dist, (hit - rng.uniform(0.004, 0.02)) / scale)
                    if dist < max(0.015, 4 * camera.clip_start_m):
                        _count(failed, "the organ surface is too close to the scope for a tip")
                        continue
                tip = c2w[:3, :3] @ (ray_c * dist / ray_c[2]) + cam_pos
                # the tip must sit in free space in front of whatever the scope sees there
                if hit < np.linalg.norm(tip - cam_pos) + 0.004:
                    _count(failed, "the tip would sit inside or behind an organ")
                    continue
                if meshes:
                    entry = _port_near(rng, scope_port, c2w[:3, 0], wall_centre, wall_axes)
                else:
                    port = np.asarray(ic["ports"][rng.integers(len(ic["ports"]))], float)
                    pxy = port * wall_axes[:2] + rng.normal(0, 0.01, 2)
                    inside = 1 - np.sum((pxy / wall_axes[:2]) ** 2)
                    if inside <= 0.05:
                        _count(failed, "the trocar port falls outside the abdominal wall")
                        continue
                    entry = wall_centre + np.r_[pxy, wall_axes[2] * np.sqrt(inside)]
                axis = normalize(tip - entry)
                entry = entry - axis * 0.04  # start outside the wall
                seg = np.linalg.norm(tip - entry)
                if caster.first_hit(entry, axis) < seg:
                    _count(failed, "the shaft would pass through an organ")
                    continue
                # keep the shaft away from the scope itself
                s = np.clip(np.dot(cam_pos - entry, axis), 0, seg)
                if np.linalg.norm(entry + axis * s - cam_pos) < 0.012:
                    _count(failed, "the shaft would touch the scope")
                    continue
                r = _u(rng, ic["shaft_radius_m"])
                if any(_segment_distance(entry, tip, e2, t2) < r + r2 + 0.002 for e2, t2, r2 in shafts):
                    _count(failed, "the shaft would cross another instrument")
                    continue
                tl = _u(rng, ic["tip_length_m"])
                opening = np.deg2rad(_u(rng, ic["opening_deg"])) if kind != "hook" else 0.0
                if kind == "clip_applier":
                    opening *= 0.5  # its jaws open less than a grasper's
                (sv, sf), (tv, tf, tparts), pose = shapes.instrument(rng, kind, entry, tip, r, tl, opening)
                smat = _metal(rng, ic["shaft_color"], (0.3, 0.5), metallic=0.3)
                tmat = _metal(rng, ic["tip_color"], ic["tip_roughness"], metallic=1.0)
                looks = {"metal": tmat, "insulation": smat, "clip": tmat}
                if kind == "clip_applier":
                    looks["clip"] = _metal(rng, [[0.75, 0.72, 0.68], [0.9, 0.88, 0.85]], (0.2, 0.35), metallic=1.0)
                shaft = MeshObject(f"tool{i}_shaft", self.table.id_of("tool_shaft"), next_id, sv, sf, smat)
                tipo = MeshObject(f"tool{i}_tip", self.table.id_of("tool_tip"), next_id + 1, tv, tf, tmat,
                                  face_parts=tparts, part_materials=tuple(looks[p] for p in shapes.TIP_PARTS))
                inst = Instrument(index=i, kind=kind, shaft_instance_id=next_id, tip_instance_id=next_id + 1,
                                  pose_world=pose, tip_world=tip, opening_rad=float(opening), shaft_radius_m=r)
                next_id += 2
                out.append((inst, shaft, tipo))
                shafts.append((entry, tip, r))
                break
        note = ""
        if len(out) < n:
            top = sorted(failed.items(), key=lambda kv: -kv[1])[:2]
            note = (f"{n - len(out)} of {n} instruments found no free path in {MAX_TOOL_DRAWS} draws each; "
                    f"rejected mostly because " + "; ".join(f"{why} ({k}x)" for why, k in top))
        return out, n, note

    def light(self, rng) -> Light:
        """The scope light of one sample."""
        lc = self.cfg["light"]
        lo, hi = np.asarray(lc["color"][0]), np.asarray(lc["color"][1])
        return Light(energy_w=_u(rng, lc["energy_w"]), spot_size_rad=float(np.deg2rad(_u(rng, lc["spot_size_deg"]))),
                     spot_blend=_u(rng, lc["spot_blend"]), radius_m=float(lc["radius_m"]),
                     color=tuple(float(c) for c in lo + (hi - lo) * rng.random(3)), ambient=_u(rng, lc["ambient"]))


def _metal(rng, color, rough, metallic):
    lo, hi = np.asarray(color[0]), np.asarray(color[1])
    c = lo + (hi - lo) * rng.random()
    return Material(base_color=tuple(float(x) for x in c), roughness=_u(rng, rough), specular=0.5, metallic=metallic)


def _count(tally: dict, why: str) -> None:
    tally[why] = tally.get(why, 0) + 1


def _ellipsoid_exit(origin, direction, centre, axes) -> np.ndarray:
    """Where the ray from ``origin`` (inside the ellipsoid) along ``direction`` leaves it."""
    o = (np.asarray(origin, float) - centre) / axes
    d = np.asarray(direction, float) / axes
    a, b, c = d @ d, 2 * o @ d, o @ o - 1
    t = (-b + np.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)
    return np.asarray(origin, float) + t * np.asarray(direction, float)


def _port_near(rng, scope_port, image_right, centre, axes) -> np.ndarray:
    """A trocar port on the cavity wall 15-35 degrees (seen from the centre) to the left or
    right of the scope's port, as in the usual triangulated port layout."""
    d0 = normalize((scope_port - centre) / axes)
    side = normalize(image_right - d0 * np.dot(image_right, d0))
    if not np.all(np.isfinite(side)) or np.linalg.norm(side) < 0.5:
        side = normalize(np.cross(d0, [0.0, 0.0, 1.0] if abs(d0[2]) < 0.9 else [1.0, 0.0, 0.0]))
    up = np.cross(d0, side)
    gamma = rng.uniform(-0.7, 0.7) + (0 if rng.random() < 0.5 else np.pi)  # left or right of the scope
    tangent = np.cos(gamma) * side + np.sin(gamma) * up
    alpha = rng.uniform(np.deg2rad(15), np.deg2rad(35))
    return centre + axes * normalize(np.cos(alpha) * d0 + np.sin(alpha) * tangent)


def _segment_distance(p0, p1, q0, q1) -> float:
    """Shortest distance between segments p0-p1 and q0-q1 (sampled; exact enough for clearance)."""
    s = np.linspace(0, 1, 64)[:, None]
    a = p0 + s * (p1 - p0)
    b = q0 + s * (q1 - q0)
    return float(np.sqrt(np.min(np.sum((a[:, None] - b[None]) ** 2, -1))))


def _cone(rng, axis: np.ndarray, half_angle: float) -> np.ndarray:
    """A direction uniformly distributed in the cone of ``half_angle`` around ``axis``."""
    cos_t = rng.uniform(np.cos(half_angle), 1.0)
    phi = rng.uniform(0, 2 * np.pi)
    sin_t = np.sqrt(1 - cos_t ** 2)
    a = normalize(np.cross(axis, [1, 0, 0] if abs(axis[0]) < 0.9 else [0, 1, 0]))
    b = np.cross(axis, a)
    return normalize(cos_t * axis + sin_t * (np.cos(phi) * a + np.sin(phi) * b))


def sample_looks(rng: np.random.Generator | None, sec: dict, m: Material) -> Material:
    """Add the image-only looks of a tissue section (burns, film, wet streaks, bands) to ``m``,
    drawn from the "looks" stream (``rng`` None: ``m`` unchanged), so the other streams draw as before."""
    if rng is None:
        return m
    return dataclasses.replace(
        m, burn=_u(rng, sec["burn"]), burn_color=_shade(rng, sec["burn_color"]), film=_u(rng, sec["film"]),
        film_color=_shade(rng, sec["film_color"]), streaks=_u(rng, sec["streaks"]), bands=_u(rng, sec["bands"]),
        looks_seed=int(rng.integers(0, 2**31 - 1)))
