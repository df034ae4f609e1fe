"""Procedural organ and instrument meshes (numpy, metres, Blender world).

World layout of the procedural abdomen: x across the patient (+x = patient's left, so a
scope looking cranially with anterior up sees the patient's right on the image's left),
y along the body (+y = cranial), z = anterior (towards the abdominal wall). The liver's
dome faces +z/+y, its sharp inferior edge faces -y; the scope looks in from -y/+z.
"""

from __future__ import annotations

import numpy as np

from .geometry import axis_angle, cylinder, loft, normalize, rotation_between, split_creases, tube, uv_sphere


def _smooth_noise(rng: np.random.Generator, dirs: np.ndarray, amplitude: float, freqs=(1.5, 4.0), n: int = 6):
    """A smooth random field over unit directions (sum of random plane waves), max ~amplitude."""
    out = np.zeros(len(dirs))
    for _ in range(n):
        w = normalize(rng.normal(size=3)) * rng.uniform(*freqs)
        out += np.sin(dirs @ w + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.3, 1.0)
    return out * (amplitude / max(np.abs(out).max(), 1e-9))


def _sig(x):
    return 1 / (1 + np.exp(-x))


def liver(rng: np.random.Generator, width: float, left_lobe_fraction: float, edge_sharpness: float,
          noise_m: float, res: tuple[int, int] = (112, 56)):
    """Two lobes, a smooth dome, a flatter visceral surface and a sharp inferior edge."""
    u, f = uv_sphere(*res)
    x, y, z = u.T
    a = width / 2
    b = a * rng.uniform(0.62, 0.75)
    split = 1 - 2 * left_lobe_fraction  # lobes meet at x = split (normalised); left lobe is x > split
    left = _sig((x - split) / 0.08)
    # Thickness: domed top, flatter underside, thinning to an edge towards -y (inferior).
    c = np.where(z > 0, 0.45 * a, 0.2 * a) * (1 - 0.4 * left)
    wedge = 1 - edge_sharpness * ((1 - y) / 2) ** 1.6
    taper_x = 1 - 0.5 * np.abs(x) ** 4  # the lateral ends are thinner too
    groove = 1 - 0.12 * np.exp(-(((x - split) / 0.07) ** 2)) * (z > 0)
    yy = y * (1 - 0.25 * left)
    notch = 0.12 * np.exp(-(((x - split) / 0.06) ** 2)) * np.clip(-y, 0, None)  # umbilical notch
    p = np.stack([a * x, b * (yy + notch), c * z * wedge * taper_x * groove], -1)
    # The dome hugs the diaphragm: lateral parts and the back bend down.
    p[:, 2] -= 0.25 * a * x ** 2 + 0.15 * a * np.clip(y, 0, None) ** 2
    p += u * _smooth_noise(rng, u, noise_m)[:, None]
    return p, f, {"semi_axes": (a, b), "split_x": split * a}


def gallbladder(rng: np.random.Generator, length: float, radius: float, res=(48, 24)):
    """A pear: narrow neck at +y, round fundus at -y, centred on the origin."""
    u, f = uv_sphere(*res)
    # uv_sphere's poles are on z; use z as the long axis, then map it to -y.
    s = u[:, 2]  # +1 neck, -1 fundus
    r = radius * (0.35 + 0.65 * np.sqrt(np.clip((1 - s) / 2, 0, 1)) ** 0.8)
    p = np.stack([u[:, 0] * r, u[:, 1] * r * 0.85, s * length / 2], -1)
    bend = rng.uniform(-0.15, 0.15) * length
    p[:, 0] += bend * (1 - s ** 2) * 0.5
    p += u * _smooth_noise(rng, u, radius * 0.06)[:, None]
    rot = rotation_between([0, 0, 1], [0, 1, 0])
    return p @ rot.T, f


def lumpy_ellipsoid(rng: np.random.Generator, semi_axes, lumpiness: float, res=(80, 40), inward=False):
    """An ellipsoid with bumps of about ``lumpiness`` metres (fat, abdominal wall)."""
    u, f = uv_sphere(*res)
    p = u * np.asarray(semi_axes)
    bumps = _smooth_noise(rng, u, lumpiness, freqs=(4.0, 12.0), n=10) + _smooth_noise(rng, u, lumpiness * 0.5)
    p += u * bumps[:, None]
    if inward:
        f = f[:, ::-1].copy()
    return p, f


def slab(points: np.ndarray, thickness: float):
    """A thin closed solid around a (ns, nt, 3) grid surface."""
    ns, nt, _ = points.shape
    du = np.gradient(points, axis=0)
    dv = np.gradient(points, axis=1)
    n = normalize(np.cross(du, dv))
    front = (points + n * thickness / 2).reshape(-1, 3)
    back = (points - n * thickness / 2).reshape(-1, 3)
    v = np.concatenate([front, back])
    off = ns * nt
    idx = lambda i, j: i * nt + j  # noqa: E731
    faces = []
    for i in range(ns - 1):
        for j in range(nt - 1):
            a, b, c, d = idx(i, j), idx(i + 1, j), idx(i, j + 1), idx(i + 1, j + 1)
            faces += [(a, b, d), (a, d, c), (off + a, off + d, off + b), (off + a, off + c, off + d)]
    border = ([idx(i, 0) for i in range(ns)] + [idx(ns - 1, j) for j in range(1, nt)]
              + [idx(i, nt - 1) for i in range(ns - 2, -1, -1)] + [idx(0, j) for j in range(nt - 2, 0, -1)])
    for k in range(len(border)):
        a, b = border[k], border[(k + 1) % len(border)]
        faces += [(a, off + a, off + b), (a, off + b, b)]
    return split_creases(v, np.asarray(faces, np.int32))  # the rim stays sharp, the sheet smooth


def ligament(rng: np.random.Generator, x: float, y0: float, width: float, z0: float, z1: float, thickness=0.002):
    """The falciform ligament: a thin sheet in the plane x ~ const from the liver up to the wall."""
    s = np.linspace(0, 1, 12)
    t = np.linspace(0, 1, 10)
    ss, tt = np.meshgrid(s, t, indexing="ij")
    sway = rng.uniform(-0.01, 0.01)
    px = x + sway * np.sin(np.pi * tt) + 0.003 * np.sin(3 * ss + rng.uniform(0, 6))
    py = y0 + width * ss + 0.3 * width * tt * rng.uniform(-0.5, 0.5)
    pz = z0 + (z1 - z0) * tt
    return slab(np.stack([px, py, pz], -1), thickness)


# Parts of an instrument's tip mesh (per-face labels), for materials: the label class
# of every part stays tool_tip. "sleeve" is the L-hook's white insulating sleeve, "hole" the
# dark inside of the suction cannula (its open end and side holes).
TIP_PARTS = ("metal", "insulation", "clip", "sleeve", "hole")
KINDS = ("grasper", "hook", "clip_applier", "scissors", "suction")


def _join(parts):
    """Concatenate (v, f, part) meshes into one (v, f, per-face part index)."""
    v, f = join_meshes([(v, f) for v, f, _ in parts])
    return v, f, np.concatenate([np.full(len(f), TIP_PARTS.index(part), np.int8) for _, f, part in parts])


def _revolve(profile, caps: bool = True, n: int = 48):
    """A surface of revolution about the z axis through the (radius, z) ``profile`` points."""
    ring = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return loft(np.stack([np.c_[rad * np.cos(ring), rad * np.sin(ring), np.full(n, z)] for rad, z in profile]),
                caps=caps)


def _jaw(length: float, width: float, height: float, sign: int, teeth: int, tooth_depth: float, n_arc: int = 32):
    """One jaw from its hinge (z=0) to its end (z=length), inner face at y ~ 0, rounded back towards
    ``sign`` * y; ``teeth`` transverse ridges of ``tooth_depth`` across the inner face.

    The inner face's mid-line meets (0, 0, length) exactly.
    """
    zs = [0.0, 0.1]
    if teeth:  # peaks (flush, y=0) and valleys (cut into the jaw) every half tooth
        zs += list(np.linspace(0.12, 0.86, 2 * teeth + 1))
    zs += [0.9, 0.96, 1.0]
    zs = np.asarray(zs)
    depth = np.zeros(len(zs))
    if teeth:
        depth[2:-3] = np.where(np.arange(2 * teeth + 1) % 2 == 1, tooth_depth, 0.0)
    # a gentle taper and a blunt, rounded nose (atraumatic jaws)
    shrink = (1 - 0.3 * zs) * np.where(zs > 0.95, 0.85, 1.0) * np.where(zs > 0.99, 0.7, 1.0)
    phi = np.linspace(0, np.pi, n_arc + 1)
    rings = []
    base = tooth_depth * 1.3 + 1e-5  # the round back starts above the deepest valley
    for z, d, k in zip(zs * length, depth, shrink):
        w, h = width / 2 * k, height * k
        arc = np.c_[w * np.cos(phi), base * k + (h - base * k) * np.sin(phi)]
        inner = np.array([[-w, d * k], [w, d * k]])
        ring = np.concatenate([arc, inner])
        rings.append(np.c_[ring, np.full(len(ring), z)])
    rings = np.asarray(rings)
    if sign < 0:  # mirror to the other side; reversed so the ring stays counter-clockwise
        rings = rings[:, ::-1] * [1, -1, 1]
    return loft(rings)


def _grasper(r: float, tip_length: float, opening: float, clip: bool = False):
    """Clevis, pin and two hinged jaws (toothed, or smooth with a clip for a clip applier)."""
    zh = tip_length * 0.2  # the hinge pin
    parts = [(*cylinder(r * 0.92, zh + r * 0.3), "metal")]
    pv, pf = cylinder(r * 0.3, r * 2.0, n=24)
    parts.append((pv @ axis_angle([0, 1, 0], np.pi / 2).T + [-r, 0, zh], pf, "metal"))
    length = (tip_length - zh) / np.cos(opening / 2)  # jaw-end midpoint lands on the axis at tip_length
    teeth = 0 if clip else int(np.clip(round(length / 0.0012), 6, 14))
    for sign in (1, -1):
        jv, jf = _jaw(length, r * (1.5 if not clip else 0.8), r * (0.9 if not clip else 0.6), sign,
                      teeth, r * 0.15 if teeth else r * 0.1)
        hinge = axis_angle([1, 0, 0], -sign * opening / 2)
        to_tool = lambda v: v @ hinge.T + [0, 0, zh]  # noqa: E731
        parts.append((to_tool(jv), jf, "metal"))
        if clip:  # one leg of a V clip along this jaw's inner face
            cv, cf = tube(np.c_[np.zeros(2), np.full(2, -sign * r * 0.08), [0.1 * length, 0.75 * length]],
                          r * 0.09, n=16)
            parts.append((to_tool(cv), cf, "clip"))
    if clip:  # the clip's apex across the hinge end of its legs
        apex = [[0, r * 0.08, zh + 0.1 * length], [0, -r * 0.08, zh + 0.1 * length]]
        av, af = tube(np.array(apex), r * 0.09, n=16)
        parts.append((av, af, "clip"))
    return _join(parts)


def _hook(r: float, tip_length: float):
    """An L-hook electrode: a short insulated collar, a white insulating sleeve tapering onto the
    wire, and the bare wire rod bent 90 degrees into a short arm.

    The outside of the bend (the surface the surgeon works with) sits on the axis at ``tip_length``.
    """
    rr = r * 0.25  # wire radius
    bend = rr * 1.5  # centre-line bend radius
    arm = r * 1.3
    corner = (bend + rr) / np.sqrt(2)
    yc, zb = corner - bend, tip_length - corner  # the rod's line and where it starts to bend
    collar_end, sleeve_end = tip_length * 0.08, tip_length * HOOK_SLEEVE_END
    cv, cf = _revolve([(r * 0.95, 0.0), (r * 0.95, collar_end)])
    # the sleeve: full width over its first part, then a smooth taper onto the wire
    t = np.linspace(0, 1, 9)
    taper = [(rr * 1.6 + (r * 0.95 - rr * 1.6) * (0.5 + 0.5 * np.cos(np.pi * x)),
              tip_length * 0.3 + x * (sleeve_end - tip_length * 0.3)) for x in t]
    sv, sf = _revolve([(r * 0.95, collar_end), *taper])
    phi = np.linspace(0, np.pi / 2, 13)
    path = np.concatenate([
        np.c_[np.full(2, yc), [tip_length * 0.3, zb]],
        np.c_[yc + bend - bend * np.cos(phi[1:]), zb + bend * np.sin(phi[1:])],
        np.c_[[yc + bend + arm], [zb + bend]],
    ])
    rv, rf = tube(np.c_[np.zeros(len(path)), path], rr, n=24)
    return _join([(cv, cf, "insulation"), (sv, sf, "sleeve"), (rv, rf, "metal")])


def instrument(rng: np.random.Generator, kind: str, entry: np.ndarray, tip: np.ndarray, shaft_radius: float,
               tip_length: float, opening: float):
    """Shaft (entry -> joint) and tip meshes plus the joint pose (4x4, +z along the shaft).

    Returns ``(shaft_v, shaft_f), (tip_v, tip_f, tip_parts), pose``: ``tip_parts`` gives each
    tip face's part (an index into :data:`TIP_PARTS`). The working end (:data:`TIP_POINT`:
    the midpoint of the jaw or blade ends, the outside of the hook's bend, the centre of the
    suction cannula's open end) reaches exactly ``tip``; the joint sits ``tip_length`` before it
    on the shaft axis.
    """
    axis = normalize(tip - entry)
    joint = tip - axis * tip_length
    roll = rng.uniform(0, 2 * np.pi)
    rot = rotation_between([0, 0, 1], axis) @ axis_angle([0, 0, 1], roll)
    pose = np.eye(4)
    pose[:3, :3] = rot
    pose[:3, 3] = joint
    shaft_len = float(np.linalg.norm(joint - entry))
    sv, sf = cylinder(shaft_radius, shaft_len)
    sv = sv + [0, 0, -shaft_len]  # ends at the joint
    if kind == "grasper":
        tv, tf, tp = _grasper(shaft_radius, tip_length, opening)
    elif kind == "clip_applier":
        tv, tf, tp = _grasper(shaft_radius, tip_length, opening, clip=True)
    elif kind == "hook":
        tv, tf, tp = _hook(shaft_radius, tip_length)
    elif kind == "scissors":
        tv, tf, tp = _scissors(shaft_radius, tip_length, opening)
    elif kind == "suction":
        tv, tf, tp = _suction(shaft_radius, tip_length)
    else:
        raise ValueError(f"unknown instrument kind {kind!r}")
    to_world = lambda v: v @ rot.T + joint  # noqa: E731
    return (to_world(sv), sf), (to_world(tv), tf, tp), pose


# Where each kind's working end is: the point ``tip_world`` records (on the shaft axis,
# ``tip_length`` beyond the joint).
TIP_POINT = {
    "grasper": "midpoint of the two jaw ends",
    "hook": "outside of the L-hook's bend",
    "clip_applier": "midpoint of the two jaw ends",
    "scissors": "midpoint of the two blade ends",
    "suction": "centre of the cannula's open end",
}
HOOK_SLEEVE_END = 0.7  # the L-hook's white sleeve ends here (share of tip_length); bare metal beyond


def _blade(length: float, width: float, thickness: float, sign: int, curve: float, n: int = 14):
    """One curved scissor blade from its pivot (z=0) to its end (z=length), a plate in the y-z
    plane: the cutting edge runs along y = c(z) (c = 0 at the pivot and at the end, bowing by up to
    ``curve`` towards -y, so the end turns towards +y like a Metzenbaum blade), the back at
    c(z) + ``sign`` * w(z); the blade lies on the ``sign`` side of x = 0 (the two blades shear past
    each other on that plane). The cutting edge's end meets (0, 0, length) exactly."""
    u = np.r_[-0.08, np.linspace(0.0, 0.88, n - 6), 0.92, 0.95, 0.97, 0.985, 0.995, 1.0]
    c = -curve / 0.385 * (u - u ** 3)  # max |c| = curve at u = 0.577
    c[0] = 0.0
    w = width * (1 - 0.45 * np.clip(u, 0, 1)) * np.sqrt(np.clip(1 - ((u - 0.88) / 0.125).clip(0) ** 2, 0.04, 1))
    t = thickness * (1 - 0.4 * np.clip((u - 0.85) / 0.15, 0, 1))
    rings = []
    for z, ci, wi, ti in zip(u * length, c, w, t):
        # edge on the shear face, back, outer back, and a bevel towards the edge
        sec = np.array([[0.0, ci], [0.0, ci + sign * wi], [sign * ti, ci + sign * wi * 0.9],
                        [sign * ti, ci + sign * wi * 0.35]])
        rings.append(np.c_[sec, np.full(4, z)])
    rings = np.asarray(rings)
    a = rings[0, :, :2]
    area = np.sum(a[:, 0] * np.roll(a[:, 1], -1) - np.roll(a[:, 0], -1) * a[:, 1])
    if area < 0:  # counter-clockwise about +z
        rings = rings[:, ::-1]
    return loft(rings)


def _scissors(r: float, tip_length: float, opening: float):
    """Laparoscopic (Metzenbaum-like) scissors: clevis, pivot pin and two curved blades that open
    like a grasper's jaws; the midpoint of the blade ends lands on the axis at ``tip_length``."""
    zh = tip_length * 0.2
    parts = [(*cylinder(r * 0.92, zh + r * 0.3), "metal")]
    pv, pf = cylinder(r * 0.3, r * 2.0, n=24)
    parts.append((pv @ axis_angle([0, 1, 0], np.pi / 2).T + [-r, 0, zh], pf, "metal"))
    length = (tip_length - zh) / np.cos(opening / 2)
    curve = min(0.1 * length, 0.2 * r)
    for sign in (1, -1):
        bv, bf = _blade(length, r * 0.8, r * 0.28, sign, curve)
        hinge = axis_angle([1, 0, 0], -sign * opening / 2)
        parts.append((bv @ hinge.T + [0, 0, zh], bf, "metal"))
    return _join(parts)


def _suction(r: float, tip_length: float, holes: int = 4):
    """A suction-irrigation cannula's end: a plain tube of the shaft's radius with a rounded lip
    round its open end, a dark bore inside and ``holes`` side holes (dark patches on the wall).
    The centre of the open end sits on the axis at ``tip_length``."""
    t = r * 0.18  # wall thickness
    a = np.linspace(0, np.pi, 9)
    lip = [(r - t / 2 + t / 2 * np.cos(x), tip_length - t / 2 + t / 2 * np.sin(x)) for x in a]
    ov, of = _revolve([(r, 0.0), *lip], caps=False)
    bottom = tip_length - min(2 * r, 0.8 * tip_length)
    iv, i_f = _revolve([(r - t, tip_length - t / 2), (r - t, bottom), (0.5 * (r - t), bottom), (1e-3 * r, bottom)],
                       caps=False)
    parts = [(ov, of, "metal"), (iv, i_f, "hole")]
    hr, rad = 0.35 * r, r * 1.004  # hole radius; just outside the wall
    k = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for h in range(holes):
        phi0 = h * np.pi / 2 + (np.pi / 4 if h % 2 else 0.0)
        z0 = tip_length * (0.42 if h % 2 == 0 else 0.66)
        phis = np.r_[phi0, phi0 + hr / r * np.cos(k)]
        zs = np.r_[z0, z0 + hr * np.sin(k)]
        hv = np.c_[rad * np.cos(phis), rad * np.sin(phis), zs]
        j = np.arange(16)
        hf = np.stack([np.zeros(16, int), 1 + j, 1 + (j + 1) % 16], -1)
        n = np.cross(hv[hf[0, 1]] - hv[0], hv[hf[0, 2]] - hv[0])
        if n @ hv[0] < 0:  # outward
            hf = hf[:, [0, 2, 1]]
        parts.append((hv, hf.astype(np.int32), "hole"))
    return _join(parts)

# --- small anatomy: cystic duct and artery, connective strands and sheets -----------------

def smooth_curve(control: np.ndarray, n: int) -> np.ndarray:
    """``n`` points evenly spaced by arc length on a centripetal Catmull-Rom curve through
    the (K, 3) ``control`` points (K >= 2; the curve passes through every one)."""
    c = np.asarray(control, float)
    p = np.concatenate([2 * c[:1] - c[1:2], c, 2 * c[-1:] - c[-2:-1]])  # mirrored end tangents
    dense = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1:i + 3]
        t0 = 0.0
        t1 = t0 + max(np.linalg.norm(p1 - p0), 1e-9) ** 0.5
        t2 = t1 + max(np.linalg.norm(p2 - p1), 1e-9) ** 0.5
        t3 = t2 + max(np.linalg.norm(p3 - p2), 1e-9) ** 0.5
        t = np.linspace(t1, t2, 16, endpoint=False)[:, None]
        a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        dense.append((t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2)
    dense.append(c[-1:])
    d = np.concatenate(dense)
    s = np.r_[0, np.cumsum(np.linalg.norm(np.diff(d, axis=0), axis=1))]
    q = np.linspace(0, s[-1], n)
    return np.stack([np.interp(q, s, d[:, k]) for k in range(3)], -1)


def vessel(centreline: np.ndarray, radius: float, n: int = 12, taper: float = 0.0):
    """A closed tube of ``radius`` along a smooth (S, 3) centreline (S x n x 2 faces, a few
    hundred for a duct); ``taper`` thins the last end by that fraction."""
    s = np.linspace(0, 1, len(centreline))
    r = radius * (1 - taper * s ** 2)
    return tube(centreline, r, n=n)


def strand(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, radius: float, sag: float, n_seg: int = 8,
           n: int = 6):
    """A thin fibre from ``a`` to ``b`` that sags by ``sag`` (fraction of its length) under
    gravity (-z) and wavers a little; thicker where it fans onto the tissue at both ends."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    t = np.linspace(0, 1, n_seg + 1)[:, None]
    length = float(np.linalg.norm(b - a))
    side = normalize(np.cross(b - a, [0.0, 0.0, 1.0]) + 1e-9)
    wave = rng.uniform(-0.08, 0.08) * length * np.sin(np.pi * t * rng.uniform(1.0, 2.0) + rng.uniform(0, np.pi))
    path = a + (b - a) * t - np.array([0, 0, 1.0]) * sag * length * 4 * t * (1 - t) + side * wave * np.sin(np.pi * t)
    r = radius * (1 + 1.5 * np.exp(-((t[:, 0] / 0.12) ** 2)) + 1.5 * np.exp(-(((1 - t[:, 0]) / 0.12) ** 2)))
    return tube(path, r, n=n)


def membrane(rng: np.random.Generator, a0, a1, b0, b1, sag: float, ns: int = 10, nt: int = 6):
    """A thin open sheet spanning the segment a0-a1 (on one organ) to b0-b1 (on another),
    sagging by ``sag`` (fraction of its span) and gently rippled; both sides are faces."""
    a0, a1, b0, b1 = (np.asarray(x, float) for x in (a0, a1, b0, b1))
    t = np.linspace(0, 1, nt)[None, :, None]
    # the free edges curve inwards (a web stretched between two organs), the span narrowest mid-way
    s = 0.5 + (np.linspace(0, 1, ns)[:, None, None] - 0.5) * (1 - rng.uniform(0.2, 0.45) * np.sin(np.pi * t))
    a = a0 + (a1 - a0) * s
    b = b0 + (b1 - b0) * s
    span = float(np.linalg.norm((a0 + a1 - b0 - b1) / 2))
    ripple = rng.uniform(0.02, 0.06) * span * np.sin(2 * np.pi * (s * rng.uniform(1, 3) + rng.uniform(0, 1)))
    p = a + (b - a) * t - np.array([0, 0, 1.0]) * (sag * span * 4 * t * (1 - t) + ripple * np.sin(np.pi * t))
    v = p.reshape(-1, 3)
    i, j = np.meshgrid(np.arange(ns - 1), np.arange(nt - 1), indexing="ij")
    q0, q1 = i * nt + j, (i + 1) * nt + j
    f = np.concatenate([np.stack([q0, q1, q1 + 1], -1), np.stack([q0, q1 + 1, q0 + 1], -1)]).reshape(-1, 3)
    return v, f.astype(np.int32)


def join_meshes(parts):
    """Concatenate (v, f) meshes into one."""
    vs, fs, off = [], [], 0
    for v, f in parts:
        vs.append(v)
        fs.append(f + off)
        off += len(v)
    return np.concatenate(vs), np.concatenate(fs).astype(np.int32)
