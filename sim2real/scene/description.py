"""A plain description of one sample: what the renderer builds, and what the metadata records.

All geometry is in world metres (Blender world, z up); poses are 4x4 camera-to-world with
OpenCV camera axes (x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Material:
    base_color: tuple[float, float, float]  # linear RGB
    roughness: float
    specular: float
    metallic: float = 0.0
    color2: tuple[float, float, float] | None = None  # mottling colour (None: flat)
    noise_scale: float = 50.0  # 1/m
    noise_strength: float = 0.0
    bump: float = 0.0
    texture_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    # image-only detail (0 = off): wet coat, vessels, lobules, fat patches, stains
    coat: float = 0.0
    coat_roughness: float = 0.05
    vessels: float = 0.0
    vessel_color: tuple[float, float, float] = (0.15, 0.02, 0.03)
    lobules: float = 0.0
    lobule_scale: float = 300.0  # 1/m
    fat_patches: float = 0.0
    fat_color: tuple[float, float, float] = (0.6, 0.4, 0.1)
    blood: float = 0.0
    bile: float = 0.0
    alpha: float = 1.0  # < 1: see-through (thin translucent membranes); image only
    # image-only looks from the "looks" stream (0 = off): cautery burns, whitish connective
    # film, wet streaks (the coat broken up by a stretched noise), pale layered bands
    burn: float = 0.0  # share of the surface
    burn_color: tuple[float, float, float] = (0.03, 0.015, 0.01)  # charred core; the rim is pale tan
    film: float = 0.0  # share of the surface
    film_color: tuple[float, float, float] = (0.7, 0.66, 0.64)
    streaks: float = 0.0  # 0 uniform coat .. 1 coat only along the streaks
    bands: float = 0.0
    looks_seed: int = 0  # where the looks' patterns lie


@dataclass
class MeshObject:
    name: str
    class_id: int
    instance_id: int  # 1..65535, unique within the sample
    vertices: np.ndarray  # (N, 3) float, world metres
    faces: np.ndarray  # (M, 3) int
    material: Material
    smooth: bool = True
    # optional per-part looks (an instrument's insulated sleeve vs bare metal): face_parts[i]
    # indexes part_materials; the label class stays class_id on every face
    face_parts: np.ndarray | None = None
    part_materials: tuple[Material, ...] = ()
    # False: seen in the image only (translucent connective strands and sheets); every label
    # pass shows the surface beneath, it has no instance id (0) and no class (0)
    labelled: bool = True


@dataclass
class Camera:
    width: int
    height: int
    k: np.ndarray  # 3x3, pixels
    camera_to_world: np.ndarray  # 4x4, OpenCV axes
    hfov_rad: float
    clip_start_m: float
    clip_end_m: float


@dataclass
class Light:
    """A spot light at the camera centre, pointing along the optical axis."""

    energy_w: float
    spot_size_rad: float
    spot_blend: float
    radius_m: float
    color: tuple[float, float, float]
    ambient: float


@dataclass
class Instrument:
    index: int
    kind: str  # grasper | hook | clip_applier | scissors | suction
    shaft_instance_id: int
    tip_instance_id: int
    pose_world: np.ndarray  # 4x4: origin at the shaft end (joint), +z along the shaft towards the tip
    tip_world: np.ndarray  # (3,) the working end: midpoint of the jaw ends / outside of the hook's bend
    opening_rad: float
    shaft_radius_m: float
    look: dict = field(default_factory=dict)  # the drawn look (shaft metal or insulated, colours...), for meta.json


@dataclass
class CameraEffects:
    """Image-only effects of the scope camera, applied after rendering (see sim2real/imaging/camera_effects.py)."""

    vignetting: float
    defocus_px: float  # Gaussian sigma in pixels of this image
    noise: float
    gamma: float
    gains: tuple[float, float, float]  # white balance, linear RGB
    saturation: float
    jpeg_quality: int  # 0 = no compression
    seed: int
    # cautery smoke: a low-frequency whitish veil (0 = none), its colour (linear RGB) and the depth
    # (metres) over which it thickens (0: as thick near as far)
    smoke: float = 0.0
    smoke_color: tuple[float, float, float] = (0.6, 0.6, 0.6)
    smoke_depth_m: float = 0.0
    # motion blur: a linear smear of this length (pixels of this image, 0 = none) at this angle
    # (degrees, image x towards y), on the instruments only ("tools") or on the whole frame ("frame")
    motion_blur_px: float = 0.0
    motion_blur_angle_deg: float = 0.0
    motion_blur_mode: str = "tools"
    # auto-exposure: a gain on linear light, before the tone curve, that brings the mean linear
    # luminance of the metered region ("centre": the central half of width and height inside the
    # field of view; "frame": all of it) after the tone curve to this target (0 = off), the gain
    # held within [1 / max_gain, max_gain]
    exposure_target: float = 0.0
    metering: str = "centre"
    max_gain: float = 4.0
    # edge enhancement: unsharp mask of the luminance, amount x (image - its Gaussian blur of
    # sigma sharpen_px), on the tone-mapped image (0 = none)
    sharpen: float = 0.0
    sharpen_px: float = 1.0


@dataclass
class RenderSettings:
    samples: int
    denoise: bool
    max_bounces: int
    threads: int
    device: str
    exposure: float
    noise_seed: int
    fov_mask: tuple[float, float, float] | None  # (cx, cy, radius) in pixels, or None
    light_tree: bool = False  # Cycles light tree (many-light sampling)


@dataclass
class SceneDescription:
    index: int
    seed: int
    objects: list[MeshObject]
    camera: Camera
    light: Light
    render: RenderSettings
    instruments: list[Instrument] = field(default_factory=list)
    target_class: str = ""
    target_point: np.ndarray | None = None
    instruments_requested: int = 0
    instruments_note: str = ""  # why fewer than requested were placed ("" when all were)
    effects: CameraEffects | None = None  # None: the rendered image as is
    meta: dict = field(default_factory=dict)  # extra top-level meta.json entries (e.g. a user scene's source)

    def instance_table(self) -> list[dict]:
        return [{"id": o.instance_id, "name": o.name, "class_id": o.class_id} for o in self.objects if o.labelled]
