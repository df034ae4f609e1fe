"""Numpy geometry: triangle meshes, frames and rays (metres, Blender world: z up)."""

from __future__ import annotations

import functools

import numpy as np

# OpenCV camera axes (x right, y down, z forward) from Blender's (x right, y up, -z forward).
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def normalize(v: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.linalg.norm(v, axis=axis, keepdims=True)
    return v / np.where(n == 0, 1, n)


def uv_sphere(n_lon: int = 64, n_lat: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere vertices and outward-facing triangles (closed, no duplicate poles).

    Cached per resolution (every organ starts from one); callers get their own copies."""
    v, f = _uv_sphere(int(n_lon), int(n_lat))
    return v.copy(), f.copy()


@functools.lru_cache(maxsize=16)
def _uv_sphere(n_lon: int, n_lat: int) -> tuple[np.ndarray, np.ndarray]:
    lat = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    lon = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ring = np.stack([np.sin(la) * np.cos(lo), np.sin(la) * np.sin(lo), np.cos(la)], -1).reshape(-1, 3)
    verts = np.concatenate([[[0, 0, 1.0]], ring, [[0, 0, -1.0]]])
    last = len(verts) - 1
    j = np.arange(n_lon)
    jn = (j + 1) % n_lon
    top = np.stack([np.zeros(n_lon, int), 1 + j, 1 + jn], 1)
    i = np.arange(n_lat - 2)[:, None]
    a, b = 1 + i * n_lon + j, 1 + i * n_lon + jn
    c, d = a + n_lon, b + n_lon
    band = np.stack([np.stack([a, c, b], -1), np.stack([b, c, d], -1)], 2).reshape(-1, 3)
    k = 1 + (n_lat - 2) * n_lon
    bottom = np.stack([k + j, np.full(n_lon, last), k + jn], 1)
    return verts, np.concatenate([top, band, bottom]).astype(np.int32)


def cylinder(radius: float, length: float, n: int = 64, capped: bool = True):
    """A cylinder along +z from z=0 to z=length (outward faces).

    Caps get their own rim vertices: smooth shading then keeps the side round and the
    caps flat instead of averaging normals over the 90-degree rim.
    """
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.stack([radius * np.cos(a), radius * np.sin(a)], -1)
    rings = np.stack([np.c_[ring, np.zeros(n)], np.c_[ring, np.full(n, length)]])
    return loft(rings, caps=capped)


def box(sx: float, sy: float, sz: float):
    """An axis-aligned box centred on the origin with sides (sx, sy, sz); 4 vertices per face."""
    v = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)]) * [sx, sy, sz]
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], np.int32)
    return split_creases(v, f)


def loft(rings: np.ndarray, caps: bool = True, crease_deg: float = 30.0):
    """A closed tube through (S, K, 3) rings (each counter-clockwise about the direction of
    travel), capped at both ends by a fan around the ring centroid; creases split."""
    s, k, _ = rings.shape
    v = rings.reshape(-1, 3)
    i, j = np.meshgrid(np.arange(s - 1), np.arange(k), indexing="ij")
    a, b = i * k + j, i * k + (j + 1) % k
    c, d = a + k, b + k
    f = np.concatenate([np.stack([a, b, d], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    if caps:
        c0, c1 = len(v), len(v) + 1
        v = np.concatenate([v, rings[0].mean(0, keepdims=True), rings[-1].mean(0, keepdims=True)])
        jj = np.arange(k)
        f = np.concatenate([f, np.stack([np.full(k, c0), (jj + 1) % k, jj], -1),
                            np.stack([np.full(k, c1), (s - 1) * k + jj, (s - 1) * k + (jj + 1) % k], -1)])
    return split_creases(v.astype(np.float64), f.astype(np.int32), crease_deg)


def tube(path: np.ndarray, radius, n: int = 32, caps: bool = True):
    """A round tube of ``radius`` (scalar or per path point) swept along an (S, 3) polyline."""
    path = np.asarray(path, float)
    t = np.gradient(path, axis=0)
    t = normalize(t)
    ref = np.array([1.0, 0, 0]) if abs(t[0, 0]) < 0.9 else np.array([0, 1.0, 0])
    nrm = normalize(np.cross(t[0], ref))
    frames = []
    for ti in t:  # parallel transport: no twist along the path
        nrm = normalize(nrm - ti * np.dot(nrm, ti))
        frames.append((nrm, np.cross(ti, nrm)))
    r = np.broadcast_to(np.asarray(radius, float), (len(path),))
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rings = np.stack([p + ri * (np.cos(a)[:, None] * nn + np.sin(a)[:, None] * bb)
                      for p, ri, (nn, bb) in zip(path, r, frames)])
    return loft(rings, caps=caps)


def split_creases(v: np.ndarray, f: np.ndarray, crease_deg: float = 30.0):
    """Duplicate vertices where faces meet at more than ``crease_deg``.

    Smooth shading averages a vertex's normal over every face that uses it; giving each
    side of a crease its own copy keeps flat faces flat and edges sharp, while faces
    meeting at small angles (a finely tessellated round surface) still share vertices.
    """
    v, f = np.asarray(v, float), np.asarray(f, np.int64)
    nf = len(f)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    fn = normalize(fn)
    # half-edges: corner (3*face + k) -> corner (3*face + k+1)
    ca = np.arange(3 * nf)
    cb = (ca // 3) * 3 + (ca % 3 + 1) % 3
    va, vb = f.ravel()[ca], f.ravel()[cb]
    key = np.minimum(va, vb) * (len(v) + 1) + np.maximum(va, vb)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    pair = np.flatnonzero(ks[1:] == ks[:-1])  # consecutive half-edges on one edge
    e1, e2 = order[pair], order[pair + 1]
    smooth = np.sum(fn[e1 // 3] * fn[e2 // 3], -1) >= np.cos(np.deg2rad(crease_deg))
    e1, e2 = e1[smooth], e2[smooth]
    # corners of the same vertex on both faces: match by vertex id
    u, w = [], []
    for x in (ca, cb):
        cx = x[e1]
        vx = f.ravel()[cx]
        other = np.where(va[e2] == vx, ca[e2], cb[e2])
        u.append(cx)
        w.append(other)
    u, w = np.concatenate(u), np.concatenate(w)
    label = np.arange(3 * nf)
    while True:  # connected components of corners by min-label propagation
        m = np.minimum(label[u], label[w])
        new = label.copy()
        np.minimum.at(new, u, m)
        np.minimum.at(new, w, m)
        new = new[new]
        if np.array_equal(new, label):
            break
        label = new
    groups, inverse = np.unique(label, return_inverse=True)
    v2 = v[f.ravel()[groups]]
    return v2, inverse.reshape(nf, 3).astype(np.int32)


def vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    return normalize(vn)


def transform_points(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ m[:3, :3].T + m[:3, 3]


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 3x3 rotation taking unit vector a onto unit vector b."""
    a, b = normalize(np.asarray(a, float)), normalize(np.asarray(b, float))
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1 + 1e-9:
        axis = normalize(np.cross(a, [1, 0, 0] if abs(a[0]) < 0.9 else [0, 1, 0]))
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def axis_angle(axis, angle: float) -> np.ndarray:
    axis = normalize(np.asarray(axis, float))
    x, y, z = axis
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c + x * x * (1 - c), x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
                     [y * x * (1 - c) + z * s, c + y * y * (1 - c), y * z * (1 - c) - x * s],
                     [z * x * (1 - c) - y * s, z * y * (1 - c) + x * s, c + z * z * (1 - c)]])


def look_at_opencv(eye, target, up=(0, 0, 1), roll: float = 0.0) -> np.ndarray:
    """camera_to_world (4x4, OpenCV axes) for a camera at ``eye`` looking at ``target``."""
    z = normalize(np.asarray(target, float) - np.asarray(eye, float))
    up = np.asarray(up, float)
    if abs(np.dot(z, normalize(up))) > 0.999:
        up = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = normalize(np.cross(-up, z))  # image right
    y = np.cross(z, x)  # image down: points away from `up`
    r = np.stack([x, y, z], axis=1)
    if roll:
        r = r @ axis_angle([0, 0, 1], roll)
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = eye
    return m


def turn_to_pixel(camera_to_world: np.ndarray, k: np.ndarray, uv) -> np.ndarray:
    """The camera turned about its centre so that what it looked straight at (its optical
    axis) lands at pixel ``uv`` instead; the smallest such turn."""
    z = np.array([0.0, 0.0, 1.0])
    r = normalize(np.linalg.inv(k) @ np.array([uv[0], uv[1], 1.0]))
    axis = np.cross(z, r)
    m = np.array(camera_to_world, float)
    if np.linalg.norm(axis) > 1e-12:
        q = axis_angle(axis, float(np.arccos(np.clip(r[2], -1.0, 1.0))))  # takes z to r
        m[:3, :3] = m[:3, :3] @ q.T
    return m


def intrinsics(width: int, height: int, hfov_rad: float) -> np.ndarray:
    """K in pixels for a horizontal field of view; square pixels, centred principal point."""
    f = (width / 2) / np.tan(hfov_rad / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])


def project(k: np.ndarray, camera_to_world: np.ndarray, points_world: np.ndarray) -> np.ndarray:
    """(N, 3) world points -> (N, 3) of (u, v, z): continuous pixel coords and camera depth."""
    w2c = np.linalg.inv(camera_to_world)
    pc = transform_points(w2c, np.atleast_2d(points_world))
    uv = pc @ k.T
    return np.c_[uv[:, :2] / uv[:, 2:3], pc[:, 2]]


def ray_triangles(origin: np.ndarray, direction: np.ndarray, tris: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Distances along one ray to each of (T, 3, 3) triangles (inf where missed); Moller-Trumbore."""
    e1 = tris[:, 1] - tris[:, 0]
    e2 = tris[:, 2] - tris[:, 0]
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > eps
    inv = np.where(ok, 1.0 / np.where(ok, det, 1), 0)
    s = origin - tris[:, 0]
    u = np.einsum("ij,ij->i", s, p) * inv
    q = np.cross(s, e1)
    v = (q @ direction) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
    return np.where(hit, t, np.inf)


class RayCaster:
    """Ray casts against a fixed set of (T, 3, 3) triangles, culled by the bounding boxes of
    spatially sorted chunks; gives exactly what :func:`ray_triangles` gives, much faster on
    large patient meshes."""

    def __init__(self, tris: np.ndarray, chunk: int = 64):
        tris = np.asarray(tris, float).reshape(-1, 3, 3)
        if len(tris):
            c = tris.mean(1)
            lo, hi = c.min(0), c.max(0)
            q = ((c - lo) / np.where(hi > lo, hi - lo, 1) * 1023).astype(np.int64)
            code = np.zeros(len(c), np.int64)
            for bit in range(10):  # Morton order: neighbours in space end up in one chunk
                for axis in range(3):
                    code |= ((q[:, axis] >> bit) & 1) << (3 * bit + axis)
            tris = tris[np.argsort(code, kind="stable")]
        self.tris = tris
        self.chunk = chunk
        n = -(-len(tris) // chunk)
        pad = np.concatenate([tris, np.repeat(tris[-1:], n * chunk - len(tris), 0)]) if len(tris) else tris
        blocks = pad.reshape(n, chunk * 3, 3)
        self.lo, self.hi = blocks.min(1) - 1e-9, blocks.max(1) + 1e-9

    def distances(self, origin, direction) -> np.ndarray:
        """Distances to every triangle the ray hits (order unspecified)."""
        if not len(self.tris):
            return np.zeros(0)
        o, d = np.asarray(origin, float), np.asarray(direction, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / d
            t0, t1 = (self.lo - o) * inv, (self.hi - o) * inv
        t0 = np.where(np.isnan(t0), -np.inf, t0)
        t1 = np.where(np.isnan(t1), np.inf, t1)
        near = np.minimum(t0, t1).max(1)
        far = np.maximum(t0, t1).min(1)
        hit = np.flatnonzero((near <= far) & (far > 0))
        if not len(hit):
            return np.zeros(0)
        idx = (hit[:, None] * self.chunk + np.arange(self.chunk)).ravel()
        idx = idx[idx < len(self.tris)]
        t = ray_triangles(o, d, self.tris[idx])
        return t[np.isfinite(t)]

    def first_hit(self, origin, direction) -> float:
        """Distance along the ray to the nearest triangle (inf where it hits none)."""
        return float(np.min(self.distances(origin, direction), initial=np.inf))


def inside_closed_mesh(point: np.ndarray, tris: np.ndarray) -> bool:
    """Parity test along a fixed oblique ray (robust enough for sampling camera poses)."""
    d = normalize(np.array([0.5773, 0.5774, 0.5775]) + 1e-3)
    t = ray_triangles(np.asarray(point, float), d, tris)
    return int(np.isfinite(t).sum()) % 2 == 1
