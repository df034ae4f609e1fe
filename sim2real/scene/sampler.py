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
from .geometry import (RayCaster, inside_closed_mesh, intrinsics, look_at_opencv, normalize, turn_to_pixel,
                       vertex_normals)
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
                 "tool_looks", "image_effects", "anatomy", "looks", "fov", "camera_tone")
        return dict(zip(names, (np.random.default_rng(s) for s in ss.spawn(len(names)))))

    def __call__(self, seed: int, index: int) -> SceneDescription:
        r = self.streams(seed, index)
        cfg = self.cfg
        extra: dict = {}  # the small anatomy's and connective tissue's draws, for meta.json
        if cfg["scene"]["mode"] == "procedural":
            objects, wall = self._procedural(r["shape"], r["material"], r["anatomy"], extra, r["looks"])
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
            shaft.material, tip.material, part_looks, inst.look = sample_tool_look(
                r["tool_looks"], cfg["instruments"], inst.kind, shaft.material, tip.material)
            if tip.part_materials:  # the tip's metal and insulated parts take the same looks (a clip keeps its own)
                looks = dict(zip(shapes.TIP_PARTS, tip.part_materials), metal=tip.material, insulation=shaft.material,
                             **part_looks)
                tip.part_materials = tuple(looks[p] for p in shapes.TIP_PARTS)
            objects += [shaft, tip]
        effects = sample_camera_effects(r["camera_effects"], cfg["camera_effects"], camera.width)
        effects = sample_scene_effects(r["image_effects"], cfg["camera_effects"], camera.width, effects)
        effects = sample_camera_tone(r["camera_tone"], cfg["camera_effects"], camera.width, effects)
        return SceneDescription(index=index, seed=seed, objects=objects, camera=camera, light=self.light(r["light"]),
                                render=self.render_settings(r["render"], r["fov"]),
                                instruments=[i for i, _, _ in instruments],
                                target_class=target_class, target_point=target_point, effects=effects,
                                instruments_requested=requested, instruments_note=note, meta=extra)

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
                              noise_seed=int(rng.integers(0, 2**31 - 1)), fov_mask=fov,
                              light_tree=bool(rs["light_tree"]))

    # --- organs -------------------------------------------------------------------------

    def _procedural(self, rng, rmat, ranat=None, extra=None, rlooks=None):
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
        lift = np.deg2rad(_u(rng, lc["lift_deg"]))
        if lift > 0:  # retraction: the inferior edge (-y) turns up (+z) about the line y = z = 0
            c, s = np.cos(lift), np.sin(lift)
            turn = np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
            for o in objs:
                o.vertices = o.vertices @ turn.T
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
        if ranat is not None:  # the cystic duct and artery, connective tissue: their own stream
            objs += self._anatomy(ranat, objs, nid, mats, extra if extra is not None else {})
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
        solids = [o for o in objects if o.name != "abdominal_wall" and o.labelled]  # strands: image only
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
        solids = [o for o in objects if o.name != "abdominal_wall" and o.labelled]
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
            k = intrinsics(w, h, hfov)
            c2w = turn_to_pixel(c2w, k, (_u(rng, cc["target_u"]) * w, _u(rng, cc["target_v"]) * h))
            cam = Camera(width=w, height=h, k=k, camera_to_world=c2w, hfov_rad=hfov,
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
        With ``instruments.entry = "view"`` (either mode) a shaft is drawn by where it leaves
        the image instead, and its port is where its line meets the cavity wall.
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
                if ic["entry"] == "view":
                    if np.sum(((tip - wall_centre) / wall_axes) ** 2) >= 0.98:
                        _count(failed, "the tip would sit outside the cavity")
                        continue
                    entry = _entry_in_view(rng, ic, tip, c2w, wall_centre, wall_axes)
                elif meshes:
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
                opening = np.deg2rad(_u(rng, ic["opening_deg"])) if kind not in ("hook", "suction") else 0.0
                if kind == "clip_applier":
                    opening *= 0.5  # its jaws open less than a grasper's
                (sv, sf), (tv, tf, tparts), pose = shapes.instrument(rng, kind, entry, tip, r, tl, opening)
                smat = _metal(rng, ic["shaft_color"], (0.3, 0.5), metallic=0.3)
                tmat = _metal(rng, ic["tip_color"], ic["tip_roughness"], metallic=1.0)
                looks = {"metal": tmat, "insulation": smat, "clip": tmat, "sleeve": smat, "hole": smat}
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

    # --- small anatomy and connective tissue (procedural scenes; the "anatomy" stream) -----

    def _anatomy(self, rng, objs, nid, mats, extra: dict) -> list[MeshObject]:
        """The cystic duct and artery leaving the gallbladder neck, and translucent connective
        strands and sheets between the gallbladder and the liver edge / fat.

        Every draw comes from ``rng`` (split into duct, artery and connective sub-streams, so
        switching one off moves none of the others); the looks of duct and artery come from
        ``mats`` (the material stream). Records its draws in ``extra`` (meta.json)."""
        cfg = self.cfg
        r_duct, r_art, r_conn = rng.spawn(3)
        by = {o.name: o for o in objs}
        if "gallbladder" not in by:
            extra["anatomy"] = {"cystic_duct": None, "cystic_artery": None, "note": "no gallbladder"}
            extra["connective"] = {"enabled": False, "note": "no gallbladder"}
            return []
        fr = _CalotFrame(by["gallbladder"], by.get("liver"), by.get("fat"))
        up, med = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])
        out: list[MeshObject] = []
        # the duct: from inside the neck out of its medial side, then medially and down along
        # the gallbladder, out from under the liver's edge, and into the fat towards the hilum
        dc, ac = cfg["cystic_duct"], cfg["cystic_artery"]
        rd, ld = _u(r_duct, dc["radius_m"]), _u(r_duct, dc["length_m"])
        gap, drop = r_duct.uniform(0.002, 0.006), r_duct.uniform(0.0, 0.004)
        drift, fall = r_duct.uniform(0.004, 0.02), r_duct.uniform(0.003, 0.012)
        start = fr.neck + up * 0.3 * fr.neck_radius
        exit_ = fr.neck + med * (fr.neck_radius + rd + gap) - up * drop
        duct = fr.route(start, exit_, fr.edge_y(exit_[0]) - ld, rd, drift, fall)
        ra, la = _u(r_art, ac["radius_m"]), _u(r_art, ac["length_m"])
        side, lift = r_art.uniform(0.002, 0.006), r_art.uniform(0.0, 0.003)
        into = r_art.uniform(0.45, 0.75)  # where along the gallbladder it enters (neck = 1)
        a_start = fr.centre + fr.axis * into * fr.half + up * 0.5 * fr.radius_at(into)
        a_exit = exit_ + up * (rd + ra + 0.001 + lift) + med * (rd + ra + side) * 0.5
        artery = fr.route(a_start, a_exit, fr.edge_y(a_exit[0]) - la, ra, drift, fall,
                          dx=rd + ra + side, dz=lift)
        artery = _keep_apart(artery, duct, rd + ra + 0.0008)
        anat = {}
        tubes = (("cystic_duct", dc, duct, rd, ld), ("cystic_artery", ac, artery, ra, la))
        for name, sec, line, radius, length in tubes:
            if not sec["enabled"]:
                anat[name] = None
                continue
            v, f = shapes.vessel(line, radius, n=12)
            out.append(MeshObject(name, self.table.id_of(name), next(nid), v, f, mats[name]))
            anat[name] = {"radius_m": float(radius), "length_beyond_edge_m": float(length),
                          "centreline_world": np.round(line, 6).tolist()}
        extra["anatomy"] = anat
        out += self._connective(r_conn, fr, extra)
        return out

    def _connective(self, rng, fr: "_CalotFrame", extra: dict) -> list[MeshObject]:
        cc = self.cfg["connective"]
        if not cc["enabled"]:
            extra["connective"] = {"enabled": False}
            return []
        lo, hi = cc["strands"]
        n_strands = int(rng.integers(lo, hi + 1))
        lo, hi = cc["sheets"]
        n_sheets = int(rng.integers(lo, hi + 1))
        ga, gn = fr.anchors_gallbladder()
        ta, tn = fr.anchors_tissue()
        out, meta = [], {"enabled": True, "labelled": False}
        radii, parts = [], []
        if len(ga) and len(ta):
            for _ in range(n_strands):
                i = int(rng.integers(len(ga)))
                d = np.linalg.norm(ta - ga[i], axis=1)
                near = np.flatnonzero((d > 0.005) & (d < 0.03))
                if not len(near):
                    continue
                j = near[rng.integers(len(near))]
                r = _u(rng, cc["strand_radius_m"])
                parts.append(shapes.strand(rng, ga[i] - gn[i] * 0.0008, ta[j] - tn[j] * 0.0008, r,
                                           rng.uniform(0.0, 0.15)))
                radii.append(float(r))
        if parts:
            v, f = shapes.join_meshes(parts)
            mat = self._membrane_material(rng, cc)
            out.append(MeshObject("connective_strands", 0, 0, v, f, mat, labelled=False))
            meta["strands"] = {"count": len(parts), "radius_m": radii, "alpha": mat.alpha,
                               "color": list(mat.base_color)}
        else:
            meta["strands"] = {"count": 0}
        sheets = []
        if len(ga) > 1 and len(ta) > 1:
            for _ in range(n_sheets):
                i = int(rng.integers(len(ga)))
                dg = np.linalg.norm(ga - ga[i], axis=1)
                dt = np.linalg.norm(ta - ga[i], axis=1)
                g2, t1 = np.flatnonzero((dg > 0.008) & (dg < 0.02)), np.flatnonzero((dt > 0.006) & (dt < 0.025))
                if not len(g2) or not len(t1):
                    continue
                a1 = ga[g2[rng.integers(len(g2))]]
                b0 = ta[t1[rng.integers(len(t1))]]
                db = np.linalg.norm(ta - b0, axis=1)
                t2 = np.flatnonzero((db > 0.008) & (db < 0.025) & ((ta - b0) @ (a1 - ga[i]) > 0))
                if not len(t2):
                    continue
                b1 = ta[t2[rng.integers(len(t2))]]
                sheets.append(shapes.membrane(rng, ga[i], a1, b0, b1, rng.uniform(0.0, 0.1)))
        if sheets:
            v, f = shapes.join_meshes(sheets)
            mat = self._membrane_material(rng, cc, patchy=0.8)
            out.append(MeshObject("connective_sheets", 0, 0, v, f, mat, labelled=False))
            meta["sheets"] = {"count": len(sheets), "alpha": mat.alpha, "color": list(mat.base_color)}
        else:
            meta["sheets"] = {"count": 0}
        extra["connective"] = meta
        return out

    @staticmethod
    def _membrane_material(rng, cc, patchy: float = 0.0) -> Material:
        """Whitish, wet, see-through; ``patchy`` > 0 varies the alpha over the surface (sheets)."""
        return Material(base_color=tuple(float(c) for c in _color(rng, cc["color"])),
                        roughness=float(rng.uniform(0.3, 0.5)), specular=0.5,
                        coat=float(rng.uniform(0.3, 0.8)), coat_roughness=float(rng.uniform(0.05, 0.15)),
                        alpha=_u(rng, cc["opacity"]), noise_strength=patchy, noise_scale=float(rng.uniform(150, 400)),
                        texture_offset=tuple(float(x) for x in rng.uniform(-100, 100, 3)))


class _CalotFrame:
    """Where the gallbladder, the liver's underside and edge and the fat's top are, for
    routing the duct and artery and anchoring connective tissue (ray casts, numpy)."""

    def __init__(self, gb: MeshObject, liver: MeshObject | None, fat: MeshObject | None):
        g = gb.vertices
        self.centre = g.mean(0)
        _, _, vt = np.linalg.svd(g - self.centre, full_matrices=False)
        axis = vt[0] * (1 if vt[0][1] >= 0 else -1)  # the neck is cranial (+y)
        self.axis = axis
        s = (g - self.centre) @ axis
        self.half = float(s.max())
        self._s, self._rad = s, np.linalg.norm((g - self.centre) - s[:, None] * axis, axis=1)
        self.gb = gb
        self.neck = self.centre + axis * 0.8 * self.half
        self.neck_radius = self.radius_at(0.8)
        self._gb = RayCaster(g[gb.faces])
        self._liver = RayCaster(liver.vertices[liver.faces]) if liver is not None else None
        self._lv = liver.vertices if liver is not None else None
        self._fat = RayCaster(fat.vertices[fat.faces]) if fat is not None else None
        self.fat = fat
        self.liver = liver

    def radius_at(self, frac: float) -> float:
        """The gallbladder's radius at ``frac`` of the way from its centre to the neck end."""
        near = np.abs(self._s - frac * self.half) < 0.1 * self.half
        return float(np.median(self._rad[near])) if near.any() else 0.005

    def edge_y(self, x: float) -> float:
        """The liver's inferior edge (lowest y) near ``x``."""
        if self._lv is None:
            return float(self.centre[1] - self.half)
        near = np.abs(self._lv[:, 0] - x) < 0.01
        return float(self._lv[near, 1].min() if near.any() else self._lv[:, 1].min())

    def under_liver(self, x, y) -> float:
        if self._liver is None:
            return np.inf
        return -1.0 + self._liver.first_hit(np.array([x, y, -1.0]), np.array([0.0, 0.0, 1.0]))

    def fat_top(self, x, y) -> float:
        if self._fat is None:
            return -np.inf
        return 1.0 - self._fat.first_hit(np.array([x, y, 1.0]), np.array([0.0, 0.0, -1.0]))

    def gb_medial(self, y, z) -> float:
        """The gallbladder's medial (+x) surface at height ``z`` and level ``y`` (-inf: none)."""
        return 1.0 - self._gb.first_hit(np.array([1.0, y, z]), np.array([-1.0, 0.0, 0.0]))

    def route(self, start, exit_, y_end, r, drift, fall, dx=0.0, dz=0.0, n=20) -> np.ndarray:
        """A smooth centreline from ``start`` (inside the gallbladder) through ``exit_``, then
        towards -y (out from under the liver) to ``y_end``, drifting ``drift`` medially and
        falling ``fall``, kept below the liver, above the fat and clear of the gallbladder,
        its last point sunk into the fat."""
        pts = [np.asarray(start, float), np.asarray(exit_, float)]
        ts = np.linspace(0, 1, 5)[1:]
        for k, t in enumerate(ts):
            y = exit_[1] + (y_end - exit_[1]) * t
            x = exit_[0] + drift * t + dx * min(1.0, 3 * t)
            z = exit_[2] - fall * t + dz
            z = min(z, self.under_liver(x, y) - r - 0.001)
            x = max(x, self.gb_medial(y, z) + r + 0.0015)
            top = self.under_liver(x, y) - r - 0.001
            fat = self.fat_top(x, y)
            if k == len(ts) - 1:
                z = fat - 0.8 * r if np.isfinite(fat) else z - 0.006
            elif y < self.edge_y(x) - 0.003 and np.isfinite(fat):
                z = fat + 0.6 * r  # out from under the liver it lies on the fat
            else:
                z = min(max(z, fat + 0.6 * r), top)
            pts.append(np.array([x, y, z]))
        return shapes.smooth_curve(np.array(pts), n)

    def anchors_gallbladder(self):
        """Gallbladder vertices (and normals) near and below the liver edge, not on its underside."""
        g = self.gb.vertices
        n = vertex_normals(g, self.gb.faces)
        edge = np.array([self.edge_y(x) for x in (g[:, 0].min(), self.centre[0], g[:, 0].max())]).max()
        ok = (g[:, 1] < edge + 0.015) & (n[:, 2] > -0.2)
        return g[ok], n[ok]

    def anchors_tissue(self):
        """Liver vertices along its inferior edge and fat vertices on top, around the gallbladder."""
        vs, ns = [], []
        xlo, xhi = self.gb.vertices[:, 0].min() - 0.03, self.gb.vertices[:, 0].max() + 0.03
        if self.liver is not None:
            v, n = self.liver.vertices, vertex_normals(self.liver.vertices, self.liver.faces)
            ok = (v[:, 0] > xlo) & (v[:, 0] < xhi) & (v[:, 2] < 0.01)
            ey = np.interp(v[:, 0], *self._edge_profile())
            ok &= v[:, 1] < ey + 0.012
            vs.append(v[ok]), ns.append(n[ok])
        if self.fat is not None:
            v, n = self.fat.vertices, vertex_normals(self.fat.vertices, self.fat.faces)
            c = self.gb.vertices
            ok = (n[:, 2] > 0.4) & (v[:, 0] > xlo) & (v[:, 0] < xhi) & (v[:, 1] > c[:, 1].min() - 0.03) \
                & (v[:, 1] < c[:, 1].max())
            vs.append(v[ok]), ns.append(n[ok])
        if not vs:
            return np.zeros((0, 3)), np.zeros((0, 3))
        return np.concatenate(vs), np.concatenate(ns)

    def _edge_profile(self):
        xs = np.linspace(self._lv[:, 0].min(), self._lv[:, 0].max(), 40)
        return xs, np.array([self.edge_y(x) for x in xs])


def _keep_apart(line: np.ndarray, other: np.ndarray, dist: float) -> np.ndarray:
    """``line`` with every point pushed to at least ``dist`` from the polyline points of ``other``."""
    out = line.copy()
    for i in range(1, len(out)):
        d = out[i] - other
        k = int(np.argmin(np.linalg.norm(d, axis=1)))
        gap = float(np.linalg.norm(d[k]))
        if gap < dist:
            out[i] = other[k] + (d[k] / gap if gap > 1e-9 else np.array([1.0, 0, 0])) * dist
    return out


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


def _entry_in_view(rng, ic: dict, tip, c2w, centre, axes) -> np.ndarray:
    """Where a shaft ending at ``tip`` enters the cavity when it is to leave the image towards
    an edge drawn from ``entry_sectors`` (E, NE, ..., SE; 45 degrees each, drawn uniformly
    within) at ``shaft_angle_deg`` to the line of sight: the line from the tip back past the
    scope (camera frame: x right, y down, z forward) meets the cavity wall there."""
    w = np.asarray(ic["entry_sectors"], float)
    sector = int(rng.choice(8, p=w / w.sum()))
    theta = np.deg2rad(45.0 * sector + rng.uniform(-22.5, 22.5))
    phi = np.deg2rad(_u(rng, ic["shaft_angle_deg"]))
    out_c = np.array([np.sin(phi) * np.cos(theta), -np.sin(phi) * np.sin(theta), -np.cos(phi)])
    return _ellipsoid_exit(tip, c2w[:3, :3] @ out_c, centre, axes)


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


def _rgb(c) -> list[float]:
    return [round(float(x), 5) for x in c]


def sample_tool_look(rng: np.random.Generator, ic: dict, kind: str, shaft: Material, tip: Material):
    """One instrument's look (the 'tool_looks' stream; the same draws for every kind).

    Returns ``(shaft, tip, parts, look)``: the shaft's and the metal parts' materials, the
    materials of the extra tip parts (``sleeve``, ``hole``) and the record for meta.json.
    Metal is brushed, never a mirror (a metallic mix below 1, a lower specular level); a share
    of shafts is bare metal; a suction cannula is all metal or all grey plastic.
    """
    metal_shaft = rng.random() < ic["shaft_metal_share"]
    metal_color = _shade(rng, ic["metal_shaft_color"])
    metal_rough = _u(rng, ic["metal_shaft_roughness"])
    metallic, specular = _u(rng, ic["tip_metallic"]), _u(rng, ic["tip_specular"])
    sleeve = Material(base_color=_shade(rng, ic["sleeve_color"]), roughness=_u(rng, ic["sleeve_roughness"]),
                      specular=0.4, metallic=0.0, coat=float(rng.uniform(0.0, 0.2)), coat_roughness=0.3)
    metal_cannula = rng.random() < ic["suction_metal_share"]
    grey = _shade(rng, ic["suction_color"])
    tip = dataclasses.replace(tip, metallic=metallic, specular=specular)
    metal = Material(base_color=metal_color, roughness=metal_rough, specular=specular, metallic=metallic)
    if kind == "suction":  # one tube: the shaft and its end look alike
        shaft_kind = "metal" if metal_cannula else "grey"
        shaft = metal if metal_cannula else dataclasses.replace(shaft, base_color=grey)
        tip = dataclasses.replace(shaft)
    else:
        shaft_kind = "metal" if metal_shaft else "insulated"
        if metal_shaft:
            shaft = metal
    hole = Material(base_color=(0.01, 0.01, 0.01), roughness=0.7, specular=0.2)
    look = {"shaft": shaft_kind, "shaft_color": _rgb(shaft.base_color), "shaft_roughness": shaft.roughness,
            "shaft_metallic": shaft.metallic, "tip_color": _rgb(tip.base_color), "tip_roughness": tip.roughness,
            "tip_metallic": tip.metallic, "tip_specular": tip.specular}
    if kind == "hook":
        look.update(sleeve_color=_rgb(sleeve.base_color), sleeve_roughness=sleeve.roughness)
    return shaft, tip, {"sleeve": sleeve, "hole": hole}, look


def sample_scene_effects(rng: np.random.Generator, ce: dict, width: int, fx: CameraEffects | None):
    """Cautery smoke and motion blur of one sample (the 'image_effects' stream; the same draws
    whatever comes out), added to its camera effects; None stays None (effects off)."""
    smoke_on = rng.random() < ce["smoke_prob"]
    smoke = _u(rng, ce["smoke_strength"])
    color = _shade(rng, ce["smoke_color"])
    depth_m = _u(rng, ce["smoke_depth_m"])
    blur_on = rng.random() < ce["motion_blur_prob"]
    length = _u(rng, ce["motion_blur_px"]) * width / 452
    angle = float(rng.uniform(0.0, 180.0))
    shake = rng.random() < ce["camera_shake_share"]
    if fx is None:
        return None
    return dataclasses.replace(
        fx, smoke=smoke if smoke_on else 0.0, smoke_color=color, smoke_depth_m=depth_m,
        motion_blur_px=length if blur_on else 0.0, motion_blur_angle_deg=angle,
        motion_blur_mode="frame" if shake else "tools")


def sample_camera_tone(rng: np.random.Generator, ce: dict, width: int, fx: CameraEffects | None):
    """Auto-exposure target and edge enhancement of one sample (the 'camera_tone' stream; the
    same draws whatever is switched on), added to its camera effects; None stays None."""
    target, amount, sigma = (float(rng.uniform(*ce[k])) for k in ("exposure_target", "sharpen", "sharpen_px"))
    sigma *= width / 452
    if fx is None:
        return None
    return dataclasses.replace(fx, exposure_target=target if ce["auto_exposure"] else 0.0, metering=ce["metering"],
                               max_gain=float(ce["max_gain"]), sharpen=amount, sharpen_px=sigma)


def sample_looks(rng: np.random.Generator | None, sec: dict, m: Material) -> Material:
    """Add the image-only looks of a tissue section (burns, film, wet streaks, bands) to ``m``,
    drawn from the "looks" stream (``rng`` None: ``m`` unchanged), so the other streams draw as before."""
    if rng is None:
        return m
    return dataclasses.replace(
        m, burn=_u(rng, sec["burn"]), burn_color=_shade(rng, sec["burn_color"]), film=_u(rng, sec["film"]),
        film_color=_shade(rng, sec["film_color"]), streaks=_u(rng, sec["streaks"]), bands=_u(rng, sec["bands"]),
        looks_seed=int(rng.integers(0, 2**31 - 1)))
