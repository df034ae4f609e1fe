"""Every default and every allowed range, in one place (read by the CLI, the add-on and
the headless script through :mod:`sim2real.config`).

A preset (``scenes/*.toml``) overrides any of these fields. ``F(default, kind, lo, hi)``:
``range`` fields take ``[min, max]`` (or one number for a fixed value) and are sampled
uniformly per sample; ``color`` fields take ``[[r, g, b], [r, g, b]]`` (linear RGB 0..1)
and are sampled per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class F:
    default: Any
    kind: str  # float | int | bool | str | range | color | choice | int_range | list_str | weights ...
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    doc: str = ""


def _tissue(color, roughness, specular, noise_scale=60.0, noise_strength=0.3, bump=0.3, enabled=True, *,
            coat=(0.6, 1.0), coat_roughness=(0.03, 0.1), vessels=(0.0, 0.0), vessel_color=None, lobules=(0.0, 0.0),
            lobule_scale=300.0, fat_patches=(0.0, 0.0), blood=(0.0, 0.05), bile=(0.0, 0.0)):
    return {
        "enabled": F(enabled, "bool"),
        "color": F(color, "color", 0.0, 1.0, doc="base colour range, linear RGB"),
        "color_variation": F([0.0, 0.15], "range", 0.0, 1.0, doc="per-sample hue/value jitter"),
        "roughness": F(roughness, "range", 0.0, 1.0, doc="roughness of the tissue under its wet coat"),
        "specular": F(specular, "range", 0.0, 1.0, doc="Principled 'Specular IOR Level'"),
        "noise_scale": F(noise_scale, "float", 0.1, 10000.0, doc="texture frequency, 1/m"),
        "noise_strength": F(noise_strength, "range", 0.0, 1.0, doc="mottling: 0 flat colour"),
        "bump": F(bump, "range", 0.0, 2.0, doc="surface bump strength"),
        "coat": F(list(coat), "range", 0.0, 1.0, doc="wet film: clear coat weight (small sharp highlights)"),
        "coat_roughness": F(list(coat_roughness), "range", 0.0, 1.0, doc="wet film roughness (low = sharp)"),
        "vessels": F(list(vessels), "range", 0.0, 1.0, doc="visibility of the surface vessel network"),
        "vessel_color": F(vessel_color or [[0.12, 0.01, 0.02], [0.25, 0.03, 0.05]], "color", 0.0, 1.0,
                          doc="vessel colour range, linear RGB"),
        "lobules": F(list(lobules), "range", 0.0, 1.0, doc="lobular cell pattern strength (liver, fat)"),
        "lobule_scale": F(lobule_scale, "float", 1.0, 100000.0, doc="lobule frequency, 1/m"),
        "fat_patches": F(list(fat_patches), "range", 0.0, 1.0, doc="share of the surface under yellow fat"),
        "blood": F(list(blood), "range", 0.0, 1.0, doc="share of the surface stained with blood"),
        "bile": F(list(bile), "range", 0.0, 1.0, doc="share of the surface stained with bile"),
    }


# Fitted by `sim2real calibrate` against ../shared/data/real/endoscapes-dev: the gallbladder and
# instrument colours and the light power with --map gallbladder=5,tool=6 ("Renders against real
# frames" in docs/results.md); the liver, fat, wall and ligament colours with background=0 added
# ("Background colour and retraction").
SCHEMA: dict[str, dict[str, F]] = {
    "scene": {
        "name": F("default", "str"),
        "mode": F("procedural", "choice", choices=("procedural", "meshes"),
                  doc="procedural organs, or organ meshes listed in [[meshes]]"),
        "target": F(["gallbladder", "gallbladder", "gallbladder", "liver"], "list_str",
                    doc="classes the camera aims at, one drawn uniformly per sample (repeat a name to weight it)"),
    },
    "render": {
        "resolution": F([452, 256], "int_pair", 8, 8192, doc="width, height in pixels"),
        "samples": F(4, "int", 1, 4096, doc="Cycles samples per pixel for the image"),
        "denoise": F(True, "bool", doc="OpenImageDenoise on the image (labels never denoised)"),
        "max_bounces": F(2, "int", 0, 64),
        "light_tree": F(False, "bool", doc="Cycles light tree; the scope's one light gains nothing from it "
                                            "(off renders ~9 % faster)"),
        "threads": F(0, "int", 0, 1024, doc="Cycles CPU threads; 0 = all"),
        "device": F("CPU", "choice", choices=("CPU", "GPU")),
        "exposure": F(0.0, "float", -10.0, 10.0, doc="stops, applied before the sRGB transform"),
        "fov_mask": F(True, "bool", doc="circular endoscope field of view; labels are 0 outside"),
        # measured on the development videos (benchmarks/fov_stats.py, see docs/rendering.md)
        "fov_mask_radius": F([0.33, 0.47], "range", 0.2, 1.0, doc="circle radius / image diagonal"),
        "fov_mask_offset": F(0.06, "float", 0.0, 0.3, doc="max centre offset / image size"),
    },
    "camera": {
        "fov_deg": F([60.0, 80.0], "range", 20.0, 120.0, doc="horizontal field of view"),
        "distance_m": F([0.035, 0.09], "range", 0.005, 2.0, doc="camera to aimed point"),
        "direction": F([0.0, -0.75, 0.65], "vec3", -1.0, 1.0, doc="mean direction from target to camera (world)"),
        "direction_spread_deg": F(35.0, "float", 0.0, 180.0, doc="cone half-angle around direction"),
        "roll_deg": F([-25.0, 25.0], "range", -180.0, 180.0),
        # measured: the gallbladder's centroid in the development training videos' frames lies at
        # 23-53 % of the width and 20-42 % of the height (10th-90th percentile)
        "target_u": F([0.2, 0.45], "range", 0.05, 0.95,
                      doc="where the aimed point lands in the image: fraction of the width from the left"),
        "target_v": F([0.3, 0.52], "range", 0.05, 0.95,
                      doc="where the aimed point lands in the image: fraction of the height from the top"),
        "clip_start_m": F(0.002, "float", 1e-5, 1.0),
        "clip_end_m": F(2.0, "float", 0.01, 1000.0),
        "max_tries": F(200, "int", 1, 100000, doc="draws before giving up on a free camera pose"),
    },
    "light": {
        "energy_w": F([0.0284, 0.1185], "range", 0.0, 1000.0, doc="spot light power at the scope tip"),
        "spot_size_deg": F([90.0, 130.0], "range", 1.0, 180.0),
        "spot_blend": F([0.4, 0.9], "range", 0.0, 1.0),
        "radius_m": F(0.002, "float", 0.0, 0.1, doc="light size (softens speculars)"),
        "color": F([[1.0, 0.93, 0.85], [1.0, 1.0, 1.0]], "color", 0.0, 1.0),
        "ambient": F([0.0, 0.02], "range", 0.0, 10.0, doc="world background strength"),
    },
    "liver": {
        **_tissue([[0.1657, 0.0107, 0.0262], [0.3902, 0.057, 0.0632]], [0.4, 0.6], [0.3, 0.5], 40.0, [0.15, 0.4],
                  [0.2, 0.5], lobules=(0.15, 0.4), lobule_scale=450.0, blood=(0.0, 0.1), bile=(0.0, 0.04)),
        "size_m": F([0.18, 0.24], "range", 0.02, 1.0, doc="left-right width"),
        "left_lobe_fraction": F([0.3, 0.45], "range", 0.0, 0.9),
        "edge_sharpness": F([0.75, 0.92], "range", 0.0, 0.98, doc="how thin the inferior edge gets"),
        "shape_noise_m": F([0.002, 0.007], "range", 0.0, 0.05),
        "lift_deg": F([0.0, 0.0], "range", 0.0, 90.0,
                      doc="retraction: the liver and the gallbladder in its bed turn up about a line across the "
                          "liver's middle, inferior edge first, so that the scope sees the visceral surface "
                          "around the gallbladder as in the real videos (0: the liver at rest)"),
    },
    "gallbladder": {
        **_tissue([[0.2571, 0.06, 0.1674], [0.3516, 0.1105, 0.218]], [0.35, 0.55], [0.3, 0.5], 80.0, [0.15, 0.4],
                  [0.1, 0.3], vessels=(0.5, 1.0), fat_patches=(0.0, 0.15), blood=(0.0, 0.08), bile=(0.0, 0.08)),
        "length_m": F([0.07, 0.10], "range", 0.01, 0.3),
        "radius_m": F([0.014, 0.022], "range", 0.002, 0.1),
        "protrusion_m": F([0.0, 0.025], "range", -0.05, 0.1, doc="fundus beyond the liver edge"),
    },
    "fat": {
        **_tissue([[0.5128, 0.1229, 0.1057], [0.8825, 0.3869, 0.3038]], [0.35, 0.55], [0.3, 0.5], 120.0, [0.2, 0.4], [0.3, 0.8],
                  lobules=(0.4, 0.7), lobule_scale=160.0, vessels=(0.15, 0.45), blood=(0.0, 0.05)),
        "lumpiness_m": F([0.004, 0.01], "range", 0.0, 0.05),
    },
    "abdominal_wall": {
        **_tissue([[0.6145, 0.0699, 0.1906], [1.0, 0.3602, 0.4547]], [0.4, 0.65], [0.2, 0.4], 50.0, [0.2, 0.5],
                  coat=(0.3, 0.8), vessels=(0.4, 0.9), fat_patches=(0.0, 0.15), blood=(0.0, 0.05)),
        "size_m": F([0.40, 0.48], "range", 0.05, 3.0, doc="cavity width"),
    },
    "ligament": {
        **_tissue([[0.5162, 0.1946, 0.2411], [0.8463, 0.4984, 0.4787]], [0.4, 0.6], [0.2, 0.4], 90.0, [0.1, 0.3],
                  vessels=(0.2, 0.5), fat_patches=(0.2, 0.5), blood=(0.0, 0.05)),
        "width_m": F([0.02, 0.05], "range", 0.002, 0.3),
    },
    "instruments": {
        "count": F([1, 3], "int_range", 0, 8, doc="instruments per sample"),
        "kinds": F(["grasper", "hook"], "list_str",
                   doc="grasper, hook, clip_applier, scissors or suction; one drawn uniformly per instrument "
                       "(repeat a kind to weight it; scenes/full.toml weighs all five roughly as in cholecystectomy)"),
        "shaft_radius_m": F([0.0025, 0.005], "range", 0.0005, 0.02, doc="2.5 mm = a 5 mm instrument"),
        "tip_length_m": F([0.015, 0.022], "range", 0.002, 0.1),
        "opening_deg": F([0.0, 35.0], "range", 0.0, 90.0, doc="grasper jaw opening"),
        "tip_distance_m": F([0.025, 0.07], "range", 0.005, 1.0, doc="tip distance from the camera"),
        "tip_in_view": F(0.7, "float", 0.0, 1.0, doc="tips land within this fraction of the image"),
        "shaft_color": F([[0.016, 0.014, 0.020], [0.034, 0.032, 0.038]], "color", 0.0, 1.0, doc="insulation, linear RGB; one shade between low and high"),
        "tip_color": F([[0.665, 0.584, 0.765], [0.871, 0.789, 0.971]], "color", 0.0, 1.0, doc="metal jaws/hook, linear RGB; one shade between low and high"),
        "tip_roughness": F([0.25, 0.45], "range", 0.0, 1.0, doc="metal jaws/hook: brushed steel"),
        "shaft_roughness": F([0.35, 0.6], "range", 0.0, 1.0, doc="insulated shaft: matte black plastic"),
        "entry": F("view", "choice", choices=("ports", "view"),
                   doc="where shafts come from. ports: the trocar ports (instruments.ports in procedural scenes; "
                       "beside the scope's own port in patient-mesh scenes). view: each shaft leaves the image "
                       "towards an edge drawn from entry_sectors, at shaft_angle_deg to the line of sight, and "
                       "enters the cavity where that line meets its wall"),
        # measured on the development training videos (benchmarks/tool_layout.py)
        "entry_sectors": F([0.03, 0.14, 0.12, 0.10, 0.11, 0.15, 0.08, 0.26], "weights", 0.0, 1e6,
                           doc="view entry: relative share of instruments leaving the image towards each of the "
                               "8 directions E, NE, N, NW, W, SW, S, SE (E = the right edge, N = the top)"),
        "shaft_angle_deg": F([35.0, 70.0], "range", 5.0, 85.0,
                             doc="view entry: angle between the shaft and the scope's line of sight"),
        "ports": F([[-0.10, -0.06], [-0.02, -0.08], [0.05, -0.05], [-0.16, -0.12], [0.0, -0.16]],
                   "points2", -1.0, 1.0, doc="trocar (x, y) on the anterior wall, in wall-size units (procedural "
                   "scenes with entry = ports)"),
        # per-instrument looks (their own random stream); the default keeps the calibrated chrome,
        # scenes/full.toml has brushed metal, white sleeves and bare-metal shafts
        "tip_metallic": F([1.0, 1.0], "range", 0.0, 1.0,
                          doc="metal parts' metallic mix (below 1: brushed steel with a diffuse share, no mirror)"),
        "tip_specular": F([0.5, 0.5], "range", 0.0, 1.0, doc="metal parts' specular level"),
        "shaft_metal_share": F(0.0, "float", 0.0, 1.0,
                               doc="probability that a shaft is bare brushed metal instead of insulated plastic"),
        "metal_shaft_color": F([[0.40, 0.40, 0.42], [0.62, 0.62, 0.65]], "color", 0.0, 1.0,
                               doc="bare metal shaft, linear RGB; one shade between low and high"),
        "metal_shaft_roughness": F([0.3, 0.5], "range", 0.0, 1.0, doc="bare metal shaft roughness"),
        "sleeve_color": F([[0.665, 0.584, 0.765], [0.871, 0.789, 0.971]], "color", 0.0, 1.0,
                          doc="the L-hook's insulating sleeve, linear RGB; one shade between low and high "
                              "(default: the metal's colour; white-cream in scenes/full.toml)"),
        "sleeve_roughness": F([0.35, 0.6], "range", 0.0, 1.0, doc="the L-hook's sleeve roughness"),
        "suction_metal_share": F(0.5, "float", 0.0, 1.0,
                                 doc="probability that a suction cannula is metal (else grey plastic)"),
        "suction_color": F([[0.10, 0.10, 0.11], [0.30, 0.30, 0.32]], "color", 0.0, 1.0,
                           doc="grey plastic suction cannula, linear RGB; one shade between low and high"),
    },
    "camera_effects": {
        "enabled": F(True, "bool", doc="image-only effects after rendering; labels never see them"),
        # vignetting and gamma: measured against the development videos' training frames (the
        # renders' lit mean colour and two-sample accuracy; docs/results.md, "Framing and tone")
        "vignetting": F([0.05, 0.25], "range", 0.0, 1.0, doc="light fall-off at the field-of-view edge"),
        "defocus_px": F([0.3, 0.9], "range", 0.0, 10.0, doc="Gaussian blur sigma, pixels at 452 px width"),
        "noise": F([0.004, 0.015], "range", 0.0, 0.2, doc="sensor noise std (0..1 pixel values, brighter = more)"),
        "gamma": F([0.7, 0.85], "range", 0.3, 3.0,
                   doc="tone response exponent on linear light (below 1 lifts the mid-tones and shadows, "
                       "as an endoscope camera's tone curve does)"),
        "white_balance": F([0.92, 1.08], "range", 0.5, 2.0, doc="red and blue gains (independent draws)"),
        "saturation": F([0.85, 1.1], "range", 0.0, 3.0, doc="colour saturation"),
        "jpeg_quality": F([55, 90], "int_range", 0, 100, doc="video compression quality; 0 = none"),
        # auto-exposure and edge enhancement, drawn from their own random stream ("camera_tone")
        "auto_exposure": F(False, "bool",
                           doc="a gain before the tone curve that meters each image to a drawn target, "
                               "as an endoscope camera's exposure control does"),
        "exposure_target": F([0.11, 0.17], "range", 0.005, 0.9,
                             doc="auto-exposure target: mean linear luminance of the metered region after "
                                 "the tone curve (the development frames' central half: 0.12-0.14-0.16, "
                                 "25th-50th-75th percentile)"),
        "metering": F("centre", "choice", choices=("centre", "frame"),
                      doc="auto-exposure region: the central half of width and height, or the whole field "
                          "of view"),
        "max_gain": F(4.0, "float", 1.0, 64.0, doc="auto-exposure gain held within [1/max_gain, max_gain]"),
        "sharpen": F([0.0, 0.0], "range", 0.0, 5.0,
                     doc="edge enhancement (unsharp mask of the luminance) amount; 0 = none"),
        "sharpen_px": F([0.8, 1.2], "range", 0.1, 10.0, doc="edge enhancement blur sigma, pixels at 452 px width"),
        # scene effects drawn from their own random stream (0 probability: the image as without them)
        "smoke_prob": F(0.0, "float", 0.0, 1.0, doc="probability of a cautery-smoke veil in a sample"),
        "smoke_strength": F([0.08, 0.3], "range", 0.0, 1.0, doc="smoke veil opacity where it is thickest"),
        "smoke_color": F([[0.45, 0.45, 0.45], [0.75, 0.73, 0.70]], "color", 0.0, 1.0,
                         doc="smoke colour, linear RGB; one shade between low and high"),
        "smoke_depth_m": F([0.03, 0.1], "range", 0.0, 10.0,
                           doc="smoke thickens over this distance from the scope (0: as thick near as far)"),
        "motion_blur_prob": F(0.0, "float", 0.0, 1.0, doc="probability of motion blur in a sample"),
        "motion_blur_px": F([2.0, 12.0], "range", 0.0, 100.0, doc="blur length, pixels at 452 px width"),
        "camera_shake_share": F(0.3, "float", 0.0, 1.0,
                                doc="share of motion-blurred samples blurred whole (camera shake) "
                                    "rather than on the instruments only"),
    },
}


def _looks(burn=(0.0, 0.0), film=(0.0, 0.0), streaks=(0.3, 0.7), bands=(0.0, 0.0)):
    """Image-only tissue looks drawn from their own stream ("looks"): cautery burns, whitish
    connective film, wet streaks, layered bands, and the colour of fat patches."""
    return {
        "fat_color": F([[0.50, 0.38, 0.20], [0.78, 0.64, 0.40]], "color", 0.0, 1.0,
                       doc="colour of the fat patches (pale cream-yellow), linear RGB; one shade between low and high"),
        "burn": F(list(burn), "range", 0.0, 1.0, doc="share of the surface under cautery burns (dark core, pale tan rim)"),
        "burn_color": F([[0.015, 0.008, 0.005], [0.06, 0.03, 0.015]], "color", 0.0, 1.0,
                        doc="charred core of a burn, linear RGB; one shade between low and high"),
        "film": F(list(film), "range", 0.0, 1.0, doc="share of the surface under whitish connective film / peritoneum"),
        "film_color": F([[0.55, 0.42, 0.45], [0.80, 0.64, 0.66]], "color", 0.0, 1.0,
                        doc="colour of the film, linear RGB; one shade between low and high"),
        "streaks": F(list(streaks), "range", 0.0, 1.0,
                     doc="wet streaks: how much a stretched noise breaks the wet coat into streaks (0 uniform coat)"),
        "bands": F(list(bands), "range", 0.0, 1.0, doc="layered sheets: strength of pale bands (fat, ligament)"),
    }


for _section, _kw in {"liver": dict(burn=(0.0, 0.04)),
                      "gallbladder": dict(burn=(0.0, 0.05), film=(0.05, 0.2)),
                      "fat": dict(film=(0.0, 0.1), streaks=(0.2, 0.6), bands=(0.3, 0.6)),
                      "abdominal_wall": dict(streaks=(0.2, 0.6)),
                      "ligament": dict(film=(0.1, 0.3), streaks=(0.2, 0.6), bands=(0.2, 0.5))}.items():
    SCHEMA[_section].update(_looks(**_kw))

SCHEMA["render"]["fov_full_frame"] = F(
    0.11, "float", 0.0, 1.0, doc="probability of a full frame (no circular field of view); measured share of "
    "full-frame development frames (benchmarks/fov_stats.py)")

# Tissue sections built into the procedural scene, in class-table order.
TISSUES = ("liver", "gallbladder", "fat", "abdominal_wall", "ligament")

# Fields of one [[meshes]] entry (patient-mesh scenes).
MESH_SCHEMA: dict[str, F] = {
    "path": F(None, "str", doc="STL, OBJ or PLY file; relative paths are relative to the preset file"),
    "class": F(None, "str", doc="class name from the class table (or a [[classes]] extra)"),
    "scale": F(0.001, "float", 1e-9, 1e9, doc="multiplies coordinates into metres (0.001 for mm)"),
    "material": F("", "str", doc="tissue section whose look to use; default: the class's own"),
}

# Fields of one [[classes]] entry (extra classes beyond ids 0..9).
EXTRA_CLASS_SCHEMA: dict[str, F] = {
    "name": F(None, "str"),
    "id": F(None, "int", 10, 255),
    "color": F(None, "rgb255", 0, 255),
}

LABEL_RENDER = {
    # The label pass: one sample per pixel at the pixel centre, so ids, depth and
    # normals are never blended across object edges.
    "samples": 1,
    "filter_width": 0.01,
}

# Small anatomy of Calot's triangle and the connective tissue over it (procedural scenes).
SCHEMA["cystic_duct"] = {
    # pale, whitish-beige under its thin peritoneal cover (as in the development frames)
    **_tissue([[0.42, 0.38, 0.30], [0.68, 0.62, 0.50]], [0.3, 0.5], [0.3, 0.5], 300.0, [0.05, 0.2], [0.05, 0.2],
              coat=(0.6, 1.0), vessels=(0.0, 0.4), vessel_color=[[0.25, 0.04, 0.04], [0.4, 0.08, 0.07]],
              fat_patches=(0.0, 0.1), blood=(0.0, 0.03), enabled=False),
    "radius_m": F([0.001, 0.002], "range", 0.0002, 0.01, doc="duct radius (2-4 mm across)"),
    "length_m": F([0.02, 0.05], "range", 0.005, 0.15,
                  doc="length beyond the liver's inferior edge (the duct always starts in the gallbladder neck)"),
}
SCHEMA["cystic_artery"] = {
    # pinkish-white: a small artery seen through its sheath
    **_tissue([[0.45, 0.20, 0.18], [0.70, 0.42, 0.38]], [0.3, 0.5], [0.3, 0.5], 300.0, [0.05, 0.2], [0.05, 0.2],
              coat=(0.6, 1.0), vessels=(0.0, 0.3), fat_patches=(0.0, 0.1), blood=(0.0, 0.03), enabled=False),
    "radius_m": F([0.0005, 0.00125], "range", 0.0001, 0.01, doc="artery radius (1-2.5 mm across)"),
    "length_m": F([0.02, 0.05], "range", 0.005, 0.15, doc="length beyond the liver's inferior edge"),
}
SCHEMA["connective"] = {
    "enabled": F(False, "bool", doc="translucent strands and sheets over Calot's triangle (image only, never labelled)"),
    "strands": F([4, 12], "int_range", 0, 64, doc="fibres between the gallbladder and the liver edge or fat"),
    "strand_radius_m": F([0.0002, 0.0006], "range", 0.00005, 0.005, doc="fibre radius (thicker where it fans out)"),
    "sheets": F([1, 3], "int_range", 0, 16,
                doc="thin peritoneal sheets between the gallbladder and the liver edge or fat"),
    "opacity": F([0.3, 0.7], "range", 0.0, 1.0, doc="alpha of strands and sheets (1 = opaque)"),
    "color": F([[0.55, 0.50, 0.45], [0.85, 0.80, 0.75]], "color", 0.0, 1.0, doc="whitish colour range, linear RGB"),
}
for _section in ("cystic_duct", "cystic_artery"):
    SCHEMA[_section].update(_looks(film=(0.0, 0.3)))
TISSUES = TISSUES + ("cystic_duct", "cystic_artery")
