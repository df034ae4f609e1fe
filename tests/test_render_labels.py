"""Labels against analytic geometry, and consistency on the default scene (needs bpy)."""

import numpy as np
import pytest

from sim2real.config import load_config
from sim2real.scene.description import Camera, Light, Material, MeshObject, RenderSettings, SceneDescription
from sim2real.scene.geometry import intrinsics, look_at_opencv, uv_sphere

pytestmark = pytest.mark.bpy

W, H = 96, 64


def _render(desc, tmp_path):
    from fakes import render_labelled

    return render_labelled(desc, tmp_path)


def _analytic_scene(fov_mask=None):
    """Camera at the origin looking along world +y; a sphere (r=3 cm) 10 cm ahead, a wall at 20 cm."""
    mat = Material(base_color=(0.5, 0.2, 0.2), roughness=0.5, specular=0.5)
    sv, sf = uv_sphere(128, 64)
    sphere = MeshObject("sphere", 2, 1, sv * 0.03 + [0.01, 0.10, 0.008], sf, mat)
    s = 0.5
    plane_v = np.array([[-s, 0.2, -s], [s, 0.2, -s], [s, 0.2, s], [-s, 0.2, s]])
    plane = MeshObject("plane", 4, 2, plane_v, np.array([[0, 1, 2], [0, 2, 3]]), mat, smooth=False)
    c2w = look_at_opencv([0, 0, 0], [0, 1, 0], up=(0, 0, 1))
    cam = Camera(W, H, intrinsics(W, H, np.deg2rad(70)), c2w, np.deg2rad(70), 0.001, 10.0)
    light = Light(1.0, np.deg2rad(120), 0.5, 0.001, (1, 1, 1), 0.0)
    rs = RenderSettings(samples=1, denoise=False, max_bounces=0, threads=2, device="CPU", exposure=0.0,
                        noise_seed=1, fov_mask=fov_mask)
    return SceneDescription(0, 0, [sphere, plane], cam, light, rs)


def _pixel_rays_world(desc):
    from sim2real.imaging.postprocess import pixel_rays

    rays_c = pixel_rays(desc.camera.k, W, H)
    r = desc.camera.camera_to_world[:3, :3]
    return rays_c, rays_c @ r.T  # z-normalised camera rays; world directions (same scale)


def test_depth_normals_segmentation_match_analytic_geometry(tmp_path):
    desc = _analytic_scene()
    a = _render(desc, tmp_path)
    rays_c, rays_w = _pixel_rays_world(desc)
    centre, radius = np.array([0.01, 0.10, 0.008]), 0.03
    # ray-sphere: |t d - c|^2 = r^2 with the ray's camera z = t (rays have z = 1)
    dd = np.sum(rays_w * rays_w, -1)
    bc = rays_w @ centre
    disc = bc ** 2 - dd * (centre @ centre - radius ** 2)
    t_sphere = np.where(disc > 0, (bc - np.sqrt(np.clip(disc, 0, None))) / dd, np.inf)
    t_plane = 0.2 / rays_w[..., 1]  # the plane y = 0.2
    hit_sphere = np.isfinite(t_sphere)
    expected_depth = np.where(hit_sphere, t_sphere, t_plane)
    seg = a["segmentation"]
    # segmentation: the object the ray hits (allow the 1-px rim where the polygonal sphere differs)
    rim = hit_sphere ^ np.roll(hit_sphere, 1, 0) | hit_sphere ^ np.roll(hit_sphere, 1, 1)
    rim |= np.roll(rim, -1, 0) | np.roll(rim, -1, 1)
    assert np.array_equal(seg[~rim], np.where(hit_sphere, 2, 4)[~rim])
    assert set(np.unique(a["instances"])) == {1, 2}
    # depth: planar z in metres (plane exact; sphere within its tessellation error)
    plane = (seg == 4) & ~rim
    np.testing.assert_allclose(a["depth"][plane], 0.2, rtol=1e-4)
    sph = (seg == 2) & ~rim
    assert np.max(np.abs(a["depth"][sph] - expected_depth[sph])) < 3e-4
    # normals: unit, camera frame (OpenCV), facing the camera
    n = a["normals"]
    np.testing.assert_allclose(np.linalg.norm(n[seg > 0], axis=-1), 1, atol=1e-4)
    np.testing.assert_allclose(n[plane], np.broadcast_to([0, 0, -1], n[plane].shape), atol=1e-4)
    p_world = rays_w * expected_depth[..., None]
    n_world = (p_world - centre) / radius
    r = desc.camera.camera_to_world[:3, :3]
    n_cam = n_world @ r
    cos = np.sum(n[sph] * n_cam[sph], -1)
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 2.0


def test_fov_mask_zeroes_labels_outside_circle(tmp_path):
    circle = (W / 2, H / 2, 30.0)
    a = _render(_analytic_scene(fov_mask=circle), tmp_path)
    yy, xx = np.mgrid[0:H, 0:W]
    outside = (xx + 0.5 - W / 2) ** 2 + (yy + 0.5 - H / 2) ** 2 > 30.0 ** 2
    assert outside.any() and (~outside).any()
    assert np.all(a["segmentation"][outside] == 0) and np.all(a["instances"][outside] == 0)
    assert np.all(np.isinf(a["depth"][outside])) and np.all(a["normals"][outside] == 0)
    assert np.all(a["image"][outside] == 0)
    assert np.all(a["segmentation"][~outside] > 0)


def _default_scene_sample(tmp_path, index, **overrides):
    from sim2real.scene.sampler import Sampler

    cfg = load_config("default", {"render.resolution": [160, 96], "render.samples": 2, "render.denoise": False,
                                  **overrides})
    desc = Sampler(cfg)(3, index)
    return desc, _render(desc, tmp_path)


def test_tool_tip_projects_onto_its_tip_pixels(tmp_path):
    desc, a = _default_scene_sample(tmp_path, 0, **{"instruments.count": [1, 1], "render.fov_mask": False})
    assert len(desc.instruments) == 1
    ins = desc.instruments[0]
    w2c = np.linalg.inv(desc.camera.camera_to_world)
    tip_c = w2c[:3, :3] @ ins.tip_world + w2c[:3, 3]
    u, v, _ = desc.camera.k @ tip_c / tip_c[2]
    col, row = int(np.floor(u)), int(np.floor(v))
    win = (slice(max(row - 2, 0), row + 3), slice(max(col - 2, 0), col + 3))
    assert np.any(a["instances"][win] == ins.tip_instance_id), "tip instance not at the projected tip"
    assert np.any(a["segmentation"][win] == 7)
    near = a["depth"][win][a["instances"][win] == ins.tip_instance_id]
    assert np.min(np.abs(near - tip_c[2])) < 0.004  # the tip's own surface, mm from its axis point


def test_normals_agree_with_depth_on_smooth_surfaces(tmp_path):
    desc, a = _default_scene_sample(tmp_path, 1, **{"instruments.count": [0, 0]})
    from sim2real.imaging.postprocess import pixel_rays

    rays = pixel_rays(desc.camera.k, 160, 96)
    depth = np.where(np.isfinite(a["depth"]), a["depth"], np.nan)
    p = rays * depth[..., None]
    dx = p[1:-1, 2:] - p[1:-1, :-2]
    dy = p[2:, 1:-1] - p[:-2, 1:-1]
    with np.errstate(invalid="ignore"):
        nd = np.cross(dx, dy)
    nd /= np.linalg.norm(nd, axis=-1, keepdims=True) + 1e-12
    inst = a["instances"]
    same = np.ones_like(inst[1:-1, 1:-1], bool)
    for sl in ((slice(1, -1), slice(2, None)), (slice(1, -1), slice(None, -2)),
               (slice(2, None), slice(1, -1)), (slice(None, -2), slice(1, -1))):
        same &= inst[sl] == inst[1:-1, 1:-1]
    ok = same & (inst[1:-1, 1:-1] > 0) & np.all(np.isfinite(nd), -1)
    n = a["normals"][1:-1, 1:-1]
    cos = np.abs(np.sum(nd[ok] * n[ok], -1))
    assert ok.sum() > 1000
    assert np.median(np.degrees(np.arccos(np.clip(cos, -1, 1)))) < 3.0


def test_class_counts_and_instances_are_consistent(tmp_path):
    from sim2real.classes import DEFAULT_TABLE
    from sim2real.imaging.postprocess import sample_meta

    desc, a = _default_scene_sample(tmp_path, 2)
    meta = sample_meta(desc, a, DEFAULT_TABLE)
    counts = np.bincount(a["segmentation"].ravel(), minlength=256)
    assert meta["class_pixel_counts"] == {c.name: int(counts[c.id]) for c in DEFAULT_TABLE}
    # every instance pixel carries its object's class
    for o in desc.objects:
        m = a["instances"] == o.instance_id
        assert np.all(a["segmentation"][m] == o.class_id)
    assert np.all((a["instances"] == 0) == (a["segmentation"] == 0))


def test_normals_agree_with_depth_on_every_class_instruments_included(tmp_path):
    """On a default-preset render with two instruments in view, the label normals of every
    class match normals derived from depth and K alone (smooth interiors), and shaft
    normals point radially away from the shaft axis recorded in the metadata."""
    from normal_check import class_normal_errors, erode
    from sim2real.classes import DEFAULT_TABLE
    from sim2real.imaging.postprocess import sample_meta

    desc, a = _default_scene_sample(tmp_path, 0, **{"instruments.count": [2, 2], "render.fov_mask": False,
                                                    "instruments.tip_distance_m": [0.03, 0.05]})
    shaft, tip = DEFAULT_TABLE.id_of("tool_shaft"), DEFAULT_TABLE.id_of("tool_tip")
    errors = class_normal_errors(a, desc.camera.k)
    assert len(errors[shaft]) > 200 and len(errors[tip]) > 100, "both instrument parts must be in view"
    judged = {c: e for c, e in errors.items() if len(e) >= 50}
    assert len(judged) >= 5
    medians = {DEFAULT_TABLE[c].name: float(np.median(e)) for c, e in judged.items()}
    assert max(medians.values()) <= 3.0, medians
    # shaft normals are perpendicular to the shaft axis and point away from it
    from sim2real.imaging.postprocess import pixel_rays

    meta = sample_meta(desc, a, DEFAULT_TABLE)
    p = pixel_rays(desc.camera.k, 160, 96) * np.where(np.isfinite(a["depth"]), a["depth"], 0)[..., None]
    checked = 0
    for ins in meta["instruments"]:
        pose = np.asarray(ins["pose_camera"])
        axis, origin = pose[:3, 2], pose[:3, 3]
        m = erode(a["instances"] == ins["shaft_instance_id"], 1)
        if m.sum() < 30:
            continue
        rel = p[m] - origin
        radial = rel - np.outer(rel @ axis, axis)
        radial /= np.linalg.norm(radial, axis=1, keepdims=True)
        n = a["normals"][m]
        ang = np.degrees(np.arccos(np.clip(np.sum(n * radial, 1), -1, 1)))
        assert np.median(ang) < 2.0 and np.percentile(ang, 90) < 5.0
        assert np.median(np.abs(n @ axis)) < np.sin(np.deg2rad(1.0))
        checked += 1
    assert checked >= 1
