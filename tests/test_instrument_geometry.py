"""Generated meshes shade right: no vertex is shared across a crease, round parts stay round,
and the instrument tips reach the point the metadata records (numpy only, no Blender)."""

import numpy as np
import pytest

from sim2real.scene import shapes
from sim2real.scene.geometry import box, cylinder

KINDS = ("grasper", "hook", "clip_applier")


def _face_normals(v, f):
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    area2 = np.linalg.norm(n, axis=1)
    return n / np.where(area2 > 0, area2, 1)[:, None], area2


def _max_crease_at_a_vertex(v, f):
    """The largest angle (deg) between two non-degenerate faces that share a vertex."""
    n, area2 = _face_normals(v, f)
    worst = 0.0
    for vid in range(len(v)):
        fs = np.flatnonzero(np.any(f == vid, axis=1) & (area2 > 1e-14))
        if len(fs) > 1:
            c = np.clip(n[fs] @ n[fs].T, -1, 1)
            worst = max(worst, float(np.degrees(np.arccos(c.min()))))
    return worst


def _smooth_vertex_normals(v, f):
    """What smooth shading interpolates: each vertex's corner-angle-weighted mean of its faces'
    normals (Blender's rule, so a quad's two triangles count once, like the quad)."""
    n, _ = _face_normals(v, f)
    vn = np.zeros_like(v)
    for k in range(3):
        a, b, c = v[f[:, k]], v[f[:, (k + 1) % 3]], v[f[:, (k + 2) % 3]]
        e1, e2 = b - a, c - a
        cos = np.sum(e1 * e2, 1) / (np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1) + 1e-30)
        np.add.at(vn, f[:, k], n * np.arccos(np.clip(cos, -1, 1))[:, None])
    return vn / np.linalg.norm(vn, axis=1, keepdims=True)


def _tool(kind, opening_deg=20.0, seed=0, r=0.004, tl=0.02):
    rng = np.random.default_rng(seed)
    entry, tip = np.array([0.05, -0.1, 0.12]), np.array([0.01, 0.02, 0.01])
    return shapes.instrument(rng, kind, entry, tip, r, tl, np.deg2rad(opening_deg)), tip, r, tl


def test_box_faces_are_flat():
    v, f = box(0.01, 0.02, 0.03)
    assert _max_crease_at_a_vertex(v, f) < 1e-6
    vn = _smooth_vertex_normals(v, f)
    assert np.allclose(np.abs(vn).max(axis=1), 1)  # axis-aligned, never (.577, .577, .577)


def test_cylinder_side_normals_are_radial_and_caps_flat():
    v, f = cylinder(0.003, 0.1)
    vn = _smooth_vertex_normals(v, f)
    side = (v[:, 2] > 0) & (v[:, 2] < 0.1) | (np.hypot(v[:, 0], v[:, 1]) > 0.0029)
    fn, _ = _face_normals(v, f)
    cap_faces = np.abs(fn[:, 2]) > 0.99
    cap_verts = np.unique(f[cap_faces])
    side_verts = np.setdiff1d(np.unique(f[~cap_faces]), cap_verts)
    radial = v[side_verts, :2] / np.linalg.norm(v[side_verts, :2], axis=1, keepdims=True)
    assert len(side_verts) >= 64 and side.any()
    assert np.allclose(vn[side_verts, 2], 0, atol=1e-9)
    assert np.allclose(vn[side_verts, :2], radial, atol=1e-9)
    assert np.allclose(np.abs(vn[cap_verts, 2]), 1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("opening", [0.0, 30.0])
def test_instrument_meshes_share_no_vertex_across_a_crease(kind, opening):
    ((sv, sf), (tv, tf, parts), _), _, _, _ = _tool(kind, opening)
    assert _max_crease_at_a_vertex(sv, sf) < 31
    assert _max_crease_at_a_vertex(tv, tf) < 31
    assert len(parts) == len(tf)


@pytest.mark.parametrize("kind", KINDS)
def test_shaft_normals_are_perpendicular_to_the_pose_axis(kind):
    ((sv, sf), _, pose), _, r, _ = _tool(kind)
    axis, joint = pose[:3, 2], pose[:3, 3]
    vn = _smooth_vertex_normals(sv, sf)
    rel = sv - joint
    radial = rel - np.outer(rel @ axis, axis)
    on_side = np.abs(np.linalg.norm(radial, axis=1) - r) < 1e-9
    on_side &= np.abs(vn @ axis) < 0.5  # not a cap vertex
    rd = radial[on_side] / np.linalg.norm(radial[on_side], axis=1, keepdims=True)
    assert on_side.sum() >= 64
    assert np.degrees(np.arccos(np.clip(np.sum(vn[on_side] * rd, 1), -1, 1))).max() < 0.01


def _closest_distance(p, v, f):
    """Distance from point p to a triangle mesh (dense sampling of each triangle)."""
    w = np.array([[a, b, 1 - a - b] for a in np.linspace(0, 1, 9) for b in np.linspace(0, 1, 9) if a + b <= 1])
    pts = np.einsum("sk,tkd->tsd", w, v[f]).reshape(-1, 3)
    return float(np.min(np.linalg.norm(pts - p, axis=1)))


@pytest.mark.parametrize("kind", ["grasper", "hook", "clip_applier"])
def test_working_end_is_the_recorded_tip(kind):
    (_, (tv, tf, _), pose), tip, r, tl = _tool(kind, opening_deg=0.0)
    axis, joint = pose[:3, 2], pose[:3, 3]
    assert np.allclose(joint + axis * tl, tip)
    # closed jaws / the hook's bend: the tip point is on the instrument's surface
    assert _closest_distance(tip, tv, tf) < 5e-5
    # and nothing reaches much further along the axis than the tip
    assert ((tv - joint) @ axis).max() < tl + 0.2 * r


def test_open_grasper_tip_is_between_the_jaw_ends():
    (_, (tv, tf, _), pose), tip, r, tl = _tool("grasper", opening_deg=30.0)
    joint, rot = pose[:3, 3], pose[:3, :3]
    local = (tv - joint) @ rot  # tool frame: +z along the shaft
    far = local[:, 2] > tl - 0.05 * tl
    ends = local[far]
    # one jaw end on each side of the axis, their midpoint on it
    assert ends[:, 1].max() > r and ends[:, 1].min() < -r
    assert abs(ends[:, 1].max() + ends[:, 1].min()) < 0.15 * r


def test_hook_is_an_L():
    (_, (tv, tf, parts), pose), _, r, tl = _tool("hook")
    joint, rot = pose[:3, 3], pose[:3, :3]
    local = (tv - joint) @ rot
    metal = np.unique(tf[parts == shapes.TIP_PARTS.index("metal")])
    insulated = np.unique(tf[parts == shapes.TIP_PARTS.index("insulation")])
    reach = np.hypot(local[metal, 0], local[metal, 1])
    # near the end the bare wire runs sideways well past the shaft radius; further back it is thin
    assert reach[local[metal, 2] > 0.85 * tl].max() > 1.2 * r
    assert reach[local[metal, 2] < 0.75 * tl].max() < 0.6 * r
    assert local[insulated, 2].max() < 0.6 * tl  # the insulation stops before the electrode


def test_grasper_jaws_have_teeth():
    (_, (tv, tf, _), pose), _, r, tl = _tool("grasper", opening_deg=0.0)
    joint, rot = pose[:3, 3], pose[:3, :3]
    local = (tv - joint) @ rot
    # the inner (gripping) face of the upper jaw: vertices at its edge x = +half-width, y small
    band = (local[:, 1] >= -1e-9) & (local[:, 1] < 0.2 * r) & (local[:, 2] > 0.35 * tl) & (local[:, 2] < 0.8 * tl)
    edge = band & (local[:, 0] > 0.3 * r)
    pts = local[edge]
    pts = pts[np.argsort(pts[:, 2])]
    y = pts[:, 1]
    levels = np.unique(np.round(y / (0.01 * r)))
    assert len(levels) >= 2
    # ridges and grooves alternate along the jaw
    high = y > (y.min() + y.max()) / 2
    assert np.count_nonzero(high[1:] != high[:-1]) >= 6


def test_organs_stay_smooth():
    rng = np.random.default_rng(0)
    v, f, _ = shapes.liver(rng, 0.2, 0.3, 0.6, 0.004)
    # one closed surface (every edge shared by exactly two faces): smooth shading everywhere
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    assert np.all(counts == 2)
