"""Procedural organ and instrument meshes (numpy, metres, Blender world).

World layout of the procedural abdomen: x across the patient (+x = patient's left, so a
scope looking cranially with anterior up sees the patient's right on the image's left),
y along the body (+y = cranial), z = anterior (towards the abdominal wall). The liver's
dome faces +z/+y, its sharp inferior edge faces -y; the scope looks in from -y/+z.
"""

from __future__ import annotations

import numpy as np

from .geometry import axis_angle, box, cylinder, normalize, rotation_between, uv_sphere


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
    return v, np.asarray(faces, np.int32)


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


def instrument(rng: np.random.Generator, kind: str, entry: np.ndarray, tip: np.ndarray, shaft_radius: float,
               tip_length: float, opening: float):
    """Shaft (entry -> joint) and tip meshes plus the joint pose (4x4, +z along the shaft).

    The working end reaches exactly ``tip``; the joint sits ``tip_length`` before it.
    """
    axis = normalize(tip - entry)
    joint = tip - axis * tip_length
    roll = rng.uniform(0, 2 * np.pi)
    rot = rotation_between([0, 0, 1], axis) @ axis_angle([0, 0, 1], roll)
    pose = np.eye(4)
    pose[:3, :3] = rot
    pose[:3, 3] = joint
    shaft_len = float(np.linalg.norm(joint - entry))
    sv, sf = cylinder(shaft_radius, shaft_len, n=24)
    sv = sv + [0, 0, -shaft_len]  # ends at the joint
    r = shaft_radius
    parts = []
    if kind == "grasper":
        clevis = cylinder(r * 0.9, tip_length * 0.2, n=16)
        parts.append(clevis)
        for sign in (1, -1):
            jv, jf = box(r * 1.3, r * 0.7, tip_length * 0.85)
            jv = jv + [0, 0, tip_length * 0.85 / 2]
            # taper the jaw towards its end
            jv[:, 0] *= 1 - 0.45 * jv[:, 2] / tip_length
            hinge = axis_angle([1, 0, 0], -sign * opening / 2)
            jv = (jv + [0, sign * r * 0.35, 0]) @ hinge.T + [0, 0, tip_length * 0.15]
            parts.append((jv, jf))
        # the jaw ends' midpoint is the tip; correct the model so it lands on `tip`
        ends = [(np.array([0, sign * r * 0.35, tip_length * 0.85]) @ axis_angle([1, 0, 0], -sign * opening / 2).T
                 + [0, 0, tip_length * 0.15]) for sign in (1, -1)]
        reach = float(np.mean(ends, axis=0)[2])
    elif kind == "hook":
        rod = cylinder(r * 0.3, tip_length, n=12)
        base = cylinder(r * 0.95, tip_length * 0.25, n=16)
        hook_len = tip_length * 0.3
        hv, hf = cylinder(r * 0.3, hook_len, n=12)
        hv = hv @ axis_angle([1, 0, 0], -np.pi / 2).T + [0, 0, tip_length - r * 0.3]
        parts += [rod, base, (hv, hf)]
        reach = tip_length
    else:
        raise ValueError(f"unknown instrument kind {kind!r}")
    tv = np.concatenate([p[0] for p in parts])
    offs = np.cumsum([0] + [len(p[0]) for p in parts[:-1]])
    tf = np.concatenate([p[1] + o for p, o in zip(parts, offs)])
    tv[:, 2] *= tip_length / reach  # scale along the axis so the working end meets `tip`
    to_world = lambda v: v @ rot.T + joint  # noqa: E731
    return (to_world(sv), sf), (to_world(tv), tf), pose
