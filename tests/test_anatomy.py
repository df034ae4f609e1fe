"""The cystic duct and artery (classes 8, 9) and the unlabelled connective tissue.

Labels are checked against the analytic tubes recorded in meta (centreline + radius),
projected through K and the pose; the strand rule against a render with the strands off.
"""

import numpy as np
import pytest

from sim2real.classes import DEFAULT_TABLE
from sim2real.config import load_config
from sim2real.scene.geometry import RayCaster, inside_closed_mesh
from sim2real.scene.sampler import Sampler

W, H = 160, 96
BASE = {"render.resolution": [W, H], "render.samples": 1, "render.denoise": False, "render.fov_mask": False}


def _cfg(**overrides):
    return load_config("full", {**BASE, **overrides})  # the preset with the anatomy on


def _render(descs, tmp_path):
    from sim2real.blender.renderer import BlenderRenderer

    r = BlenderRenderer()
    try:
        return [r.render(d, tmp_path)[0] for d in descs]
    finally:
        r.close()


def _ray_cylinder(o, d, p0, p1, r):
    """Distance along the ray o + t d to the first hit on the round side of the segment
    p0-p1 of radius r (inf where missed)."""
    axis = p1 - p0
    length = np.linalg.norm(axis)
    axis = axis / length
    w = o - p0
    dp = d - (d @ axis) * axis
    wp = w - (w @ axis) * axis
    a, b, c = dp @ dp, 2 * dp @ wp, wp @ wp - r * r
    disc = b * b - 4 * a * c
    if a < 1e-15 or disc < 0:
        return np.inf
    for t in sorted(((-b - np.sqrt(disc)) / (2 * a), (-b + np.sqrt(disc)) / (2 * a))):
        s = (w + t * d) @ axis
        if t > 0 and 0 <= s <= length:
            return t
    return np.inf


def _polyline_distance(points, line):
    """Distance of each of (N, 3) points to the polyline (S, 3)."""
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(np.einsum("nsk,sk->ns", points[:, None] - a, ab) / np.sum(ab * ab, 1), 0, 1)
    closest = a + t[..., None] * ab
    return np.min(np.linalg.norm(points[:, None] - closest, axis=-1), axis=1)


@pytest.mark.bpy
def test_duct_and_artery_labels_match_their_analytic_tubes(tmp_path):
    """Pixels whose centre ray meets the recorded tube at the rendered depth are labelled
    with the tube's class; every pixel of the class lies on its tube's surface."""
    from sim2real.imaging.postprocess import pixel_rays

    desc = Sampler(_cfg(**{"instruments.count": [0, 0]}))(3, 0)
    (a,) = _render([desc], tmp_path)
    c2w = desc.camera.camera_to_world
    eye, rot = c2w[:3, 3], c2w[:3, :3]
    kinv = np.linalg.inv(desc.camera.k)
    rays_c = pixel_rays(desc.camera.k, W, H)
    organs = [o.vertices[o.faces] for o in desc.objects if o.name in ("liver", "gallbladder", "fat")]
    organ_caster = RayCaster(np.concatenate(organs))
    for name in ("cystic_duct", "cystic_artery"):
        cid = DEFAULT_TABLE.id_of(name)
        rec = desc.meta["anatomy"][name]
        line, r = np.asarray(rec["centreline_world"]), rec["radius_m"]
        checked = 0
        # points on the surface facing the scope, along the tube (its ends are buried in tissue)
        for i in range(2, len(line) - 3):
            t = line[i + 1] - line[i]
            t /= np.linalg.norm(t)
            for f in (0.0, 0.25, 0.5, 0.75):
                p = line[i] + f * (line[i + 1] - line[i])
                v = eye - p
                facing = v - (v @ t) * t
                facing /= np.linalg.norm(facing)
                across = np.cross(t, facing)
                for ang in np.deg2rad([-40, 0, 40]):
                    s = p + r * (np.cos(ang) * facing + np.sin(ang) * across)
                    sc = rot.T @ (s - eye)
                    if sc[2] <= 0:
                        continue
                    u, vv = (desc.camera.k @ sc)[:2] / sc[2]
                    col, row = int(np.floor(u)), int(np.floor(vv))
                    if not (0 <= col < W and 0 <= row < H):
                        continue
                    # the centre ray of that pixel against the tube's segments around the point
                    d = rot @ (kinv @ [col + 0.5, row + 0.5, 1.0])  # world direction, camera z = 1 per unit
                    z = min(_ray_cylinder(eye, d, line[j], line[j + 1], r * np.cos(np.pi / 12))
                            for j in range(max(i - 2, 0), min(i + 3, len(line) - 1)))
                    if not np.isfinite(z) or abs(a["depth"][row, col] - z) > 0.0003:
                        continue  # something else is in front (or the pixel centre misses the tube)
                    hit = eye + d * z
                    front = hit - 0.0004 * d / np.linalg.norm(d)
                    if any(inside_closed_mesh(q, t) for q in (hit, front) for t in organs):
                        continue  # where the tube dips into an organ, both surfaces meet there
                    dn = d / np.linalg.norm(d)
                    if abs(organ_caster.first_hit(eye, dn) - z * np.linalg.norm(d)) < 0.0006:
                        continue  # an organ surface within 0.6 mm of the tube's: which is in front is a tie
                    assert a["segmentation"][row, col] == cid, (name, i, row, col, a["segmentation"][row, col])
                    checked += 1
        assert checked >= 20, f"{name}: only {checked} unoccluded points in view"
        # conversely, every pixel of the class sits on the tube (within its tessellation)
        m = a["segmentation"] == cid
        assert m.sum() > 30
        p_world = (rays_c[m] * a["depth"][m][:, None]) @ rot.T + eye
        dist = _polyline_distance(p_world, line)
        assert np.all(np.abs(dist - r) < 0.25 * r + 2e-4), (name, float(np.abs(dist - r).max()))


@pytest.mark.bpy
@pytest.mark.parametrize("passes", ["exr", "emission"])
def test_connective_tissue_is_in_the_image_only(tmp_path, monkeypatch, passes):
    """Strands and sheets change the image; every label pass shows the surface beneath them,
    byte for byte as without them (also on the emission path bpy 5 takes); they are no
    instance and are recorded under their own key."""
    from sim2real.blender import compat
    from sim2real.imaging.postprocess import sample_meta

    if passes == "emission":
        monkeypatch.setattr(compat, "writes_passes_to_exr", lambda: False)

    on = Sampler(_cfg(**{"connective.strands": [12, 12], "connective.sheets": [2, 2]}))(0, 1)
    off = Sampler(_cfg(**{"connective.enabled": False}))(0, 1)
    assert any(not o.labelled for o in on.objects) and all(o.labelled for o in off.objects)
    a_on, a_off = _render([on, off], tmp_path)
    for k in ("segmentation", "instances", "depth", "normals"):
        assert a_on[k].tobytes() == a_off[k].tobytes(), k
    changed = np.any(a_on["image"] != a_off["image"], -1)
    assert changed.sum() > 50, "the strands must show in the image"
    meta = sample_meta(on, a_on, DEFAULT_TABLE, on.meta)
    assert {i["name"] for i in meta["instances"]} == {o.name for o in on.objects if o.labelled}
    assert all(i["id"] > 0 for i in meta["instances"])
    assert meta["connective"]["strands"]["count"] > 0 and meta["connective"]["labelled"] is False
    assert meta["class_pixel_counts"] == sample_meta(off, a_off, DEFAULT_TABLE)["class_pixel_counts"]


def _geometry(desc, names):
    return {o.name: o.vertices.tobytes() + o.faces.tobytes() for o in desc.objects if o.name in names}


def test_anatomy_is_deterministic_and_leaves_other_draws_alone():
    organs = ("liver", "gallbladder", "fat", "ligament", "abdominal_wall")
    full = Sampler(_cfg())
    a, b = full(5, 2), full(5, 2)
    assert _geometry(a, [o.name for o in a.objects]) == _geometry(b, [o.name for o in b.objects])
    assert a.meta == b.meta
    names = {o.name for o in a.objects}
    assert {"cystic_duct", "cystic_artery"} <= names
    # switching the new content off changes none of the organs (geometry or looks)
    bare = Sampler(_cfg(**{"cystic_duct.enabled": False, "cystic_artery.enabled": False,
                           "connective.enabled": False}))(5, 2)
    assert _geometry(bare, organs) == _geometry(a, organs)
    assert ({o.name: o.material for o in bare.objects if o.name in organs}
            == {o.name: o.material for o in a.objects if o.name in organs})
    # the artery's draws do not depend on the duct's being built, nor the duct's on the strands
    no_duct = Sampler(_cfg(**{"cystic_duct.enabled": False}))(5, 2)
    assert _geometry(no_duct, ["cystic_artery"]) == _geometry(a, ["cystic_artery"])
    no_strands = Sampler(_cfg(**{"connective.enabled": False}))(5, 2)
    assert _geometry(no_strands, ["cystic_duct", "cystic_artery"]) == _geometry(a, ["cystic_duct", "cystic_artery"])
    # strands are not in the placement ray caster: the scope and the tools stand where they did
    np.testing.assert_array_equal(no_strands.camera.camera_to_world, a.camera.camera_to_world)
    assert [i.tip_world.tolist() for i in no_strands.instruments] == [i.tip_world.tolist() for i in a.instruments]


def test_duct_and_artery_shapes():
    """Both tubes start inside the gallbladder neck, have the drawn radius, do not touch each
    other, and run out from under the liver's inferior edge; unlabelled objects carry no id."""
    cfg = _cfg()
    for index in range(3):
        desc = Sampler(cfg)(1, index)
        by = {o.name: o for o in desc.objects}
        gb = by["gallbladder"].vertices[by["gallbladder"].faces]
        lines = {}
        for name, sec in (("cystic_duct", "cystic_duct"), ("cystic_artery", "cystic_artery")):
            rec = desc.meta["anatomy"][name]
            line, r = np.asarray(rec["centreline_world"]), rec["radius_m"]
            lo, hi = cfg[sec]["radius_m"]
            assert lo <= r <= hi
            assert inside_closed_mesh(line[0], gb), f"{name} must start inside the gallbladder"
            assert line[-1][1] < by["liver"].vertices[:, 1].min() + 0.01  # out past the liver's edge
            dist = _polyline_distance(by[name].vertices, line)
            ring = dist > 0.5 * r  # all but the two cap centres
            assert len(dist) - ring.sum() <= 4
            err = np.abs(dist[ring] - r)
            # on the inside of a bend a ring's vertices come closer to the next segment's line
            assert float(np.percentile(err, 95)) < 0.1 * r and float(err.max()) < 0.35 * r
            lines[name] = (line, r)
        (dl, dr), (al, ar) = lines["cystic_duct"], lines["cystic_artery"]
        assert _polyline_distance(al[1:], dl).min() > dr + ar
        for o in desc.objects:
            assert (o.instance_id > 0) == o.labelled
        assert len({o.instance_id for o in desc.objects if o.labelled}) == sum(o.labelled for o in desc.objects)


def test_liver_lift_turns_liver_and_gallbladder_up_as_one_rigid_body():
    rest = {o.name: o.vertices for o in Sampler(load_config("default", {**BASE, "liver.lift_deg": 0}))(4, 2).objects}
    lifted = {o.name: o.vertices for o in Sampler(load_config("default", {**BASE, "liver.lift_deg": 50}))(4, 2).objects}
    t = np.deg2rad(50)
    for name in ("liver", "gallbladder"):
        y, z = rest[name][:, 1], rest[name][:, 2]
        # a turn about the x axis that raises the inferior (-y) side: the edge goes up and back
        np.testing.assert_allclose(lifted[name][:, 0], rest[name][:, 0], atol=1e-12)
        np.testing.assert_allclose(lifted[name][:, 1], y * np.cos(t) + z * np.sin(t), atol=1e-12)
        np.testing.assert_allclose(lifted[name][:, 2], -y * np.sin(t) + z * np.cos(t), atol=1e-12)
    edge = np.argmin(rest["liver"][:, 1])
    assert lifted["liver"][edge, 2] > rest["liver"][edge, 2] + 0.5 * abs(rest["liver"][edge, 1]) * np.sin(t)
    # the gallbladder stays in its bed: its distance to the liver is unchanged
    d = lambda v: np.min(np.linalg.norm(v["gallbladder"][::7, None] - v["liver"][None, ::11], axis=-1))  # noqa: E731
    assert abs(d(lifted) - d(rest)) < 1e-9
    for name in ("fat", "abdominal_wall"):  # the rest of the cavity does not move
        np.testing.assert_array_equal(lifted[name], rest[name])
