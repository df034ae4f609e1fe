"""Scissors, the suction cannula and the L-hook's sleeve: geometry where the metadata says,
looks drawn per instrument from their own stream, and exact labels (the render test needs bpy)."""

import numpy as np
import pytest

from sim2real.config import load_config
from sim2real.scene import shapes
from sim2real.scene.sampler import Sampler

R, TL = 0.004, 0.02


def _tool(kind, opening_deg=0.0, seed=0, r=R, tl=TL):
    rng = np.random.default_rng(seed)
    entry, tip = np.array([0.05, -0.1, 0.12]), np.array([0.01, 0.02, 0.01])
    (sv, sf), (tv, tf, parts), pose = shapes.instrument(rng, kind, entry, tip, r, tl, np.deg2rad(opening_deg))
    joint, rot = pose[:3, 3], pose[:3, :3]
    return dict(shaft=(sv, sf), tip=(tv, tf, parts), pose=pose, tip_world=tip, entry=entry,
                local=(tv - joint) @ rot, shaft_local=(sv - joint) @ rot)


def _part_vertices(t, part):
    tv, tf, parts = t["tip"]
    return t["local"][np.unique(tf[parts == shapes.TIP_PARTS.index(part)])]


def _closest_distance(p, v, f):
    """Distance from point p to a triangle mesh (dense sampling of each triangle)."""
    w = np.array([[a, b, 1 - a - b] for a in np.linspace(0, 1, 11) for b in np.linspace(0, 1, 11) if a + b <= 1])
    pts = np.einsum("sk,tkd->tsd", w, v[f]).reshape(-1, 3)
    return float(np.min(np.linalg.norm(pts - p, axis=1)))


def _max_crease_at_a_vertex(v, f):
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    area2 = np.linalg.norm(n, axis=1)
    n = n / np.where(area2 > 0, area2, 1)[:, None]
    worst = 0.0
    for vid in range(len(v)):
        fs = np.flatnonzero(np.any(f == vid, axis=1) & (area2 > 1e-14))
        if len(fs) > 1:
            worst = max(worst, float(np.degrees(np.arccos(np.clip(n[fs] @ n[fs].T, -1, 1).min()))))
    return worst


@pytest.mark.parametrize("kind", ["scissors", "suction"])
@pytest.mark.parametrize("opening", [0.0, 30.0])
def test_new_kinds_sit_on_the_axis_where_asked(kind, opening):
    t = _tool(kind, opening)
    axis, joint = t["pose"][:3, 2], t["pose"][:3, 3]
    # the joint is tip_length before the asked tip on the line from the port
    assert np.allclose(joint + axis * TL, t["tip_world"])
    assert np.allclose(axis, (t["tip_world"] - t["entry"]) / np.linalg.norm(t["tip_world"] - t["entry"]))
    # the shaft: a cylinder of the shaft radius along the axis, ending at the joint
    s = t["shaft_local"]
    assert np.allclose(np.hypot(s[:, 0], s[:, 1])[np.hypot(s[:, 0], s[:, 1]) > 1e-9], R)
    assert np.isclose(s[:, 2].max(), 0.0) and s[:, 2].min() < -0.1
    # the tip stays within the advertised length, and (closed) within the shaft's radius
    loc = t["local"]
    assert loc[:, 2].min() >= -1e-9 and loc[:, 2].max() <= TL + 1e-9
    reach = np.hypot(loc[:, 0], loc[:, 1]).max()
    pin = np.hypot(R, 0.3 * R)  # the pivot pin's ends stand out of the clevis
    if kind == "suction" or opening == 0:
        assert reach <= max(pin, 1.01 * R) + 1e-9
    else:  # open blades swing out at most their length x sin(half the opening)
        assert reach <= max(pin, R + TL * np.sin(np.deg2rad(opening) / 2) / np.cos(np.deg2rad(opening) / 2))
    tv, tf, parts = t["tip"]
    assert len(parts) == len(tf) and _max_crease_at_a_vertex(tv, tf) < 31


def test_closed_scissors_end_at_the_tip_and_open_ones_straddle_it():
    closed = _tool("scissors", 0.0)
    tv, tf, _ = closed["tip"]
    assert _closest_distance(closed["tip_world"], tv, tf) < 5e-5
    op = _tool("scissors", 40.0)
    loc = op["local"]
    ends = loc[loc[:, 2] > TL - 0.06 * TL]
    # one blade end each side of the axis (the opening is in y), their midpoint on it
    assert ends[:, 1].max() > R and ends[:, 1].min() < -R
    assert abs(ends[:, 1].max() + ends[:, 1].min()) < 0.3 * R
    # nothing of the open tip is near the tip point (the blades are apart)
    tv, tf, _ = op["tip"]
    assert _closest_distance(op["tip_world"], tv, tf) > 0.5 * R


def test_scissor_blades_are_thin_curved_plates():
    loc = _tool("scissors", 0.0)["local"]
    blades = loc[loc[:, 2] > 0.35 * TL]  # beyond the clevis
    # thin across the pivot pin (x), wide in the cutting plane (y)
    assert np.ptp(blades[:, 0]) < 0.7 * R and np.ptp(blades[:, 1]) > 1.0 * R
    # curved: the middle of the closed pair bows off the line joining its root and its end
    mid = blades[np.abs(blades[:, 2] - 0.6 * TL) < 0.05 * TL]
    root = blades[np.abs(blades[:, 2] - 0.4 * TL) < 0.05 * TL]
    centre = lambda p: (p[:, 1].max() + p[:, 1].min()) / 2  # noqa: E731
    assert abs(centre(mid)) > 0.1 * R and centre(mid) < centre(root) + 1e-12  # bows towards -y, ends at 0


def test_suction_is_an_open_tube_with_side_holes():
    t = _tool("suction")
    tv, tf, parts = t["tip"]
    loc = t["local"]
    wall = _part_vertices(t, "metal")
    rad = np.hypot(wall[:, 0], wall[:, 1])
    # a plain tube of the shaft's radius (no jaws), its lip ending in the plane of the tip
    assert np.allclose(rad[wall[:, 2] < 0.9 * TL], R)
    assert np.isclose(wall[:, 2].max(), TL) and rad[np.isclose(wall[:, 2], TL)].max() < R
    # the tip point is the centre of the open end: the tube's mouth is empty
    assert _closest_distance(t["tip_world"], tv, tf) > 0.6 * R
    # inside the mouth: a dark bore (part "hole") some way down
    bore = _part_vertices(t, "hole")
    inside = bore[np.hypot(bore[:, 0], bore[:, 1]) < R]
    assert len(inside) and inside[:, 2].min() < TL - R
    # side holes: dark patches just outside the wall, in at least three places round the tube
    outside = bore[np.hypot(bore[:, 0], bore[:, 1]) > R]
    angles = np.unique(np.round(np.degrees(np.arctan2(outside[:, 1], outside[:, 0])) / 45))
    assert len(outside) and len(angles) >= 3
    assert outside[:, 2].min() > 0.2 * TL and outside[:, 2].max() < 0.9 * TL


def test_hook_has_a_white_sleeve_over_its_neck_and_bare_metal_at_the_end():
    t = _tool("hook")
    sleeve, metal = _part_vertices(t, "sleeve"), _part_vertices(t, "metal")
    # the sleeve covers most of the neck, then the bare rod and its L
    assert sleeve[:, 2].min() < 0.15 * TL and sleeve[:, 2].max() > 0.6 * TL
    assert sleeve[:, 2].max() < metal[:, 2].max() - 0.2 * TL
    assert np.hypot(sleeve[:, 0], sleeve[:, 1]).max() <= R
    # the straight rod runs inside the sleeve: thinner than the sleeve's narrowest ring
    rod = metal[metal[:, 2] < 0.75 * TL]
    assert rod[:, 2].min() < 0.35 * TL
    ring = np.hypot(sleeve[:, 0], sleeve[:, 1])
    assert ring[ring > 1e-9].min() > np.hypot(rod[:, 0], rod[:, 1]).max()  # (not the caps' centres)


def test_full_preset_kinds_are_weighted_like_cholecystectomy():
    assert load_config("default")["instruments"]["kinds"] == ["grasper", "hook"]
    kinds = load_config("full")["instruments"]["kinds"]
    counts = {k: kinds.count(k) for k in shapes.KINDS}
    assert set(kinds) == set(shapes.KINDS)
    assert min(counts["hook"], counts["grasper"]) > max(counts["clip_applier"], counts["scissors"], counts["suction"])


def test_existing_streams_draw_as_before():
    """Streams are append-only: the first eight are what an eight-stream sampler drew."""
    r = Sampler.streams(4, 9)
    old = np.random.SeedSequence([4, 9]).spawn(8)
    for name, ss in zip(("shape", "material", "camera", "tools", "light", "render", "appearance", "camera_effects"),
                        old):
        assert r[name].random() == np.random.default_rng(ss).random()


def test_looks_are_drawn_per_instrument_and_recorded_without_moving_anything():
    over = {"render.resolution": [64, 36], "instruments.count": [3, 3],
            "instruments.kinds": ["hook", "scissors", "suction", "grasper"]}
    plain = Sampler(load_config("default", over))
    metal = Sampler(load_config("default", {**over, "instruments.shaft_metal_share": 1.0,
                                            "instruments.suction_metal_share": 0.0,
                                            "instruments.sleeve_color": [0.7, 0.7, 0.6]}))
    seen = set()
    for i in range(4):
        a, b = plain(1, i), metal(1, i)
        for oa, ob in zip(a.objects, b.objects):
            assert np.array_equal(oa.vertices, ob.vertices)
        assert [x.kind for x in a.instruments] == [x.kind for x in b.instruments]
        for ins in b.instruments:
            seen.add(ins.kind)
            tip = next(o for o in b.objects if o.instance_id == ins.tip_instance_id)
            shaft = next(o for o in b.objects if o.instance_id == ins.shaft_instance_id)
            assert ins.look["shaft"] == {"suction": "grey"}.get(ins.kind, "metal")
            assert ins.look["shaft_color"] == pytest.approx(list(shaft.material.base_color), abs=1e-5)
            if ins.kind == "hook":
                sleeve = tip.part_materials[shapes.TIP_PARTS.index("sleeve")]
                assert np.allclose(sleeve.base_color, [0.7, 0.7, 0.6]) and sleeve.metallic == 0
                assert ins.look["sleeve_color"] == pytest.approx([0.7, 0.7, 0.6])
            if ins.kind == "suction":  # one tube: its end looks like its shaft
                assert tip.material.base_color == shaft.material.base_color and shaft.material.metallic == 0
            assert ins.opening_rad == 0 or ins.kind not in ("hook", "suction")
    assert {"hook", "scissors", "suction"} <= seen


def _kinds_scene():
    """A scissors, a suction cannula and an L-hook side by side over a flat plane, seen side-on."""
    from sim2real.scene.description import Camera, Instrument, Light, Material, MeshObject, RenderSettings, \
        SceneDescription
    from sim2real.scene.geometry import intrinsics, look_at_opencv

    bg = Material(base_color=(0.3, 0.1, 0.1), roughness=0.5, specular=0.4)
    s = 0.5
    objs = [MeshObject("plane", 4, 1, np.array([[-s, 0.12, -s], [s, 0.12, -s], [s, 0.12, s], [-s, 0.12, s]]),
                       np.array([[0, 1, 2], [0, 2, 3]]), bg, smooth=False)]
    steel = Material(base_color=(0.6, 0.6, 0.6), roughness=0.4, specular=0.3, metallic=0.7)
    insts, rng, nid = [], np.random.default_rng(0), 2
    for k, kind in enumerate(["scissors", "suction", "hook"]):
        tip = np.array([-0.02 + 0.022 * k, 0.07, -0.012])
        entry = tip + [-0.04, 0.0, 0.06]
        op = 0.0  # closed blades: the tip point is on them
        (sv, sf), (tv, tf, tp), pose = shapes.instrument(rng, kind, entry, tip, 0.0028, 0.018, op)
        objs += [MeshObject(f"tool{k}_shaft", 6, nid, sv, sf, steel),
                 MeshObject(f"tool{k}_tip", 7, nid + 1, tv, tf, steel, face_parts=tp,
                            part_materials=tuple(steel for _ in shapes.TIP_PARTS))]
        insts.append(Instrument(k, kind, nid, nid + 1, pose, tip, op, 0.0028))
        nid += 2
    w, h = 128, 80
    c2w = look_at_opencv([0, 0.0, 0.01], [0, 0.07, -0.005], up=(0, 0, 1))
    cam = Camera(w, h, intrinsics(w, h, np.deg2rad(75)), c2w, np.deg2rad(75), 0.001, 10.0)
    rs = RenderSettings(samples=1, denoise=False, max_bounces=0, threads=2, device="CPU", exposure=0.0,
                        noise_seed=1, fov_mask=None)
    return SceneDescription(0, 0, objs, cam, Light(0.1, np.deg2rad(120), 0.5, 0.002, (1, 1, 1), 0.01), rs,
                            instruments=insts)


def _pixel(desc, p_world):
    w2c = np.linalg.inv(desc.camera.camera_to_world)
    pc = w2c[:3, :3] @ p_world + w2c[:3, 3]
    u, v, _ = desc.camera.k @ pc / pc[2]
    return int(np.floor(v)), int(np.floor(u))


@pytest.mark.bpy
def test_rendered_labels_of_the_new_kinds(tmp_path):
    from sim2real.blender.renderer import BlenderRenderer

    desc = _kinds_scene()
    r = BlenderRenderer()
    try:
        a, _ = r.render(desc, tmp_path)
    finally:
        r.close()
    seg, inst = a["segmentation"], a["instances"]
    for ins in desc.instruments:
        axis, joint = ins.pose_world[:3, 2], ins.pose_world[:3, 3]
        # the tip point lands on this tool's tip pixels (for the suction tube seen side-on: its lip)
        row, col = _pixel(desc, ins.tip_world)
        win = (slice(row - 2, row + 3), slice(col - 2, col + 3))
        assert np.any(inst[win] == ins.tip_instance_id), ins.kind
        assert set(np.unique(seg[win][inst[win] == ins.tip_instance_id])) == {7}
        # a point on the axis well inside the shaft is shaft; one in the middle of the tip is tip
        row, col = _pixel(desc, joint - axis * 0.01)
        assert inst[row, col] == ins.shaft_instance_id and seg[row, col] == 6, ins.kind
        row, col = _pixel(desc, joint + axis * 0.018 * 0.5)
        assert inst[row, col] == ins.tip_instance_id and seg[row, col] == 7, ins.kind
    # the hook's sleeve: points on its axis between collar and sleeve end project onto tool_tip
    hook = desc.instruments[2]
    axis, joint = hook.pose_world[:3, 2], hook.pose_world[:3, 3]
    for f in (0.2, 0.35, 0.5, 0.62):
        row, col = _pixel(desc, joint + axis * 0.018 * f)
        assert seg[row, col] == 7 and inst[row, col] == hook.tip_instance_id, f
