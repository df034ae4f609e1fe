"""Render passes -> data-set arrays (numpy only, testable without Blender).

Input: the channels of the image EXR and of the label EXR as Blender writes them
(``<ViewLayer>.Combined.R``, ``<ViewLayer>.Depth.Z``, ``<ViewLayer>.Normal.X``,
``<ViewLayer>.IndexOB.X``; the view-layer prefix is matched loosely). Output: the arrays
of one sample in the conventions of :data:`sim2real.dataset.format.CONVENTIONS`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import __version__
from ..classes import INSTRUMENT_IDS, ClassTable
from ..dataset.format import class_pixel_counts
from . import camera_effects
from .camera_effects import linear_to_srgb8

NO_SURFACE_BLENDER = 1e9
_DETAIL = ("coat", "vessels", "lobules", "fat_patches", "blood", "bile", "burn", "film", "streaks", "bands")  # recorded when non-zero  # Blender writes 1e10 where a ray hits nothing


def channel(channels: dict[str, np.ndarray], suffix: str) -> np.ndarray:
    """The channel whose name ends with ``suffix`` (e.g. ``Depth.Z``), whatever the layer prefix."""
    hits = [k for k in channels if k == suffix or k.endswith("." + suffix)]
    if not hits:
        raise KeyError(f"render output lacks the {suffix} channel (has: {', '.join(sorted(channels))})")
    return channels[sorted(hits, key=len)[0]]


def fov_mask(width: int, height: int, circle: tuple[float, float, float] | None) -> np.ndarray:
    """True where a pixel centre lies inside the circular field of view."""
    if circle is None:
        return np.ones((height, width), bool)
    cx, cy, r = circle
    yy, xx = np.mgrid[0:height, 0:width]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def pixel_rays(k: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) camera-frame ray directions through pixel centres (z = 1)."""
    yy, xx = np.mgrid[0:height, 0:width]
    pix = np.stack([xx + 0.5, yy + 0.5, np.ones_like(xx, float)], -1)
    return pix @ np.linalg.inv(k).T


def normals_world_to_camera(n_world: np.ndarray, camera_to_world: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """World normals -> unit camera-frame normals (OpenCV), flipped to face the camera."""
    r = camera_to_world[:3, :3]
    n = n_world @ r  # == (R^T n) per pixel
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    n = n / np.where(length > 0, length, 1)
    facing_away = np.sum(n * rays, axis=-1) > 0
    n[facing_away] *= -1
    return n.astype(np.float32)


def process(image_ch: dict, label_ch: dict, k: np.ndarray, camera_to_world: np.ndarray,
            instance_classes: dict[int, int], circle=None, exposure: float = 0.0,
            effects=None) -> dict[str, np.ndarray]:
    """All arrays of one sample from the raw passes; ``effects`` (CameraEffects) touch the image only."""
    rgb = np.stack([channel(image_ch, f"Combined.{c}") for c in "RGB"], -1)
    h, w = rgb.shape[:2]
    index = np.rint(channel(label_ch, "IndexOB.X")).astype(np.int64)
    depth = channel(label_ch, "Depth.Z").astype(np.float32)
    n_world = np.stack([channel(label_ch, f"Normal.{c}") for c in "XYZ"], -1)
    inside = fov_mask(w, h, circle)
    surface = inside & (depth < NO_SURFACE_BLENDER) & (index > 0)
    lut = np.zeros(max(instance_classes, default=0) + 1 if instance_classes else 1, np.uint8)
    for iid, cid in instance_classes.items():
        lut[iid] = cid
    index = np.where(surface & (index < len(lut)), index, 0)
    seg = lut[index].astype(np.uint8)
    inst = index.astype(np.uint16)
    depth = np.where(surface, depth, np.inf).astype(np.float32)
    normals = normals_world_to_camera(n_world, camera_to_world, pixel_rays(k, w, h))
    normals[~surface] = 0
    if effects is None:
        image = linear_to_srgb8(rgb, exposure)
    else:
        tools = np.isin(seg, INSTRUMENT_IDS)
        image = camera_effects.apply(rgb, effects, circle, exposure, tool_mask=tools, depth=depth)
    image[~inside] = 0
    return {"image": image, "segmentation": seg, "instances": inst, "depth": depth, "normals": normals}


def sample_meta(desc, arrays: dict, table: ClassTable, extra: dict | None = None) -> dict:
    """The per-sample JSON record (plain Python types)."""
    cam = desc.camera
    c2w = cam.camera_to_world
    w2c = np.linalg.inv(c2w)
    instruments = []
    for ins in desc.instruments:
        tip_c = w2c[:3, :3] @ ins.tip_world + w2c[:3, 3]
        uvw = cam.k @ tip_c
        instruments.append({
            "index": ins.index,
            "kind": ins.kind,
            "shaft_instance_id": ins.shaft_instance_id,
            "tip_instance_id": ins.tip_instance_id,
            "pose_world": ins.pose_world.tolist(),
            "pose_camera": (w2c @ ins.pose_world).tolist(),
            "tip_world": ins.tip_world.tolist(),
            "tip_camera": tip_c.tolist(),
            "tip_pixel": (uvw[:2] / uvw[2]).tolist() if uvw[2] > 0 else None,
            "opening_deg": float(np.rad2deg(ins.opening_rad)),
            "shaft_radius_m": ins.shaft_radius_m,
            "look": ins.look,
            "visible_pixels": {
                "shaft": int(np.sum(arrays["instances"] == ins.shaft_instance_id)),
                "tip": int(np.sum(arrays["instances"] == ins.tip_instance_id)),
            },
        })
    li = desc.light
    meta = {
        "index": desc.index,
        "seed": desc.seed,
        "resolution": [cam.width, cam.height],
        "camera": {
            "K": cam.k.tolist(),
            "camera_to_world": c2w.tolist(),
            "hfov_deg": float(np.rad2deg(cam.hfov_rad)),
            "clip_start_m": cam.clip_start_m,
            "clip_end_m": cam.clip_end_m,
        },
        "light": {"type": "spot_at_camera", "energy_w": li.energy_w, "spot_size_deg": float(np.rad2deg(li.spot_size_rad)),
                  "spot_blend": li.spot_blend, "radius_m": li.radius_m, "color": list(li.color),
                  "ambient": li.ambient},
        "fov_mask": None if desc.render.fov_mask is None else dict(zip(("cx", "cy", "radius"), desc.render.fov_mask)),
        "target": {"class": desc.target_class,
                   "point_world": None if desc.target_point is None else np.asarray(desc.target_point).tolist()},
        "instruments": instruments,
        "instruments_requested": max(desc.instruments_requested, len(instruments)),
        "instruments_placed": len(instruments),
        "instruments_note": desc.instruments_note,  # why fewer were placed than requested
        "instances": [{"id": o.instance_id, "name": o.name, "class_id": o.class_id,
                       "class": table[o.class_id].name, "pixels": int(np.sum(arrays["instances"] == o.instance_id))}
                      for o in desc.objects if o.labelled],  # unlabelled: see meta["connective"]
        "materials": {o.name: {"base_color": list(o.material.base_color), "roughness": o.material.roughness,
                               "specular": o.material.specular, "metallic": o.material.metallic,
                               **{k: getattr(o.material, k) for k in _DETAIL if getattr(o.material, k, 0.0)}}
                      for o in desc.objects},
        "class_pixel_counts": class_pixel_counts(arrays["segmentation"], table),
        "render": {"engine": "CYCLES", "samples": desc.render.samples, "denoise": desc.render.denoise,
                   "max_bounces": desc.render.max_bounces, "noise_seed": desc.render.noise_seed,
                   "exposure": desc.render.exposure, "light_tree": desc.render.light_tree,
                   "fov_full_frame": desc.render.fov_mask is None},
        "camera_effects": None if getattr(desc, "effects", None) is None else dataclasses.asdict(desc.effects),
        "package_version": __version__,
    }
    if extra:
        meta.update(extra)
    return meta
