"""The hand-written codecs that Blender's bundled Python needs (``png``, the numpy EXR
codec, ``scene.meshio``) agree with the well-kept libraries on the same files: Pillow
(through imageio), OpenEXR and trimesh. Files are tiny and made here, plus the patient
meshes of ../shared/data when present."""

import struct
import zlib

import numpy as np
import pytest

import sim2real.io.exr as exr
from sim2real.io.png import decode_png, encode_png

iio = pytest.importorskip("imageio.v3")

SIZES = [(1, 1), (7, 13), (37, 53)]  # (H, W): odd, non-square, one pixel


def _image(shape, dtype, seed=0):
    """Noise plus a gradient, so that Pillow's adaptive filters pick more than one type."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    grad = (x * 37 + y * 11) * (top // 255)
    if len(shape) == 3:
        grad = grad[..., None]
    return ((grad + rng.integers(0, top // 16, shape)) % (top + 1)).astype(dtype)


CASES = [((h, w), dtype, c) for h, w in SIZES for dtype, c in
         [(np.uint8, None), (np.uint8, 3), (np.uint8, 4), (np.uint16, None)]]


def _ids(case):
    (h, w), dtype, c = case
    return f"{h}x{w}-{np.dtype(dtype).name}-{'grey' if c is None else c}"


# --- PNG ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_png_written_here_reads_the_same_in_pillow(case):
    (h, w), dtype, c = case
    a = _image((h, w) if c is None else (h, w, c), dtype)
    got = iio.imread(encode_png(a), extension=".png")
    assert got.dtype == a.dtype and np.array_equal(got, a)


@pytest.mark.parametrize("case", CASES + [((7, 13), np.uint8, 2)], ids=_ids)
def test_png_written_by_pillow_reads_the_same_here(case):
    (h, w), dtype, c = case  # c == 2: grey + alpha, which only the reader supports
    a = _image((h, w) if c is None else (h, w, c), dtype, seed=1)
    got = decode_png(iio.imwrite("<bytes>", a, extension=".png"))
    assert got.dtype == a.dtype and np.array_equal(got, a)


def _filtered_png(a: np.ndarray) -> bytes:
    """A PNG of ``a`` whose row y uses filter type y % 5 (Pillow rarely picks 'average')."""
    h, w = a.shape[:2]
    c = 1 if a.ndim == 2 else a.shape[2]
    depth = 16 if a.dtype == np.uint16 else 8
    bpp = c * depth // 8
    rows = np.ascontiguousarray(a.astype(">u2") if depth == 16 else a).view(np.uint8).reshape(h, -1).astype(int)
    out = bytearray()
    prev = np.zeros(rows.shape[1], int)
    for y, row in enumerate(rows):
        f = y % 5
        left = np.concatenate([np.zeros(bpp, int), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, int), prev[:-bpp]])
        if f == 0:
            pred = np.zeros_like(row)
        elif f == 1:
            pred = left
        elif f == 2:
            pred = prev
        elif f == 3:
            pred = (left + prev) // 2
        else:  # Paeth, as the PNG specification defines it
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        out += bytes([f]) + ((row - pred) % 256).astype(np.uint8).tobytes()
        prev = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("shape,dtype", [((11, 9, 3), np.uint8), ((10, 7, 4), np.uint8), ((12, 5), np.uint16)])
def test_png_with_every_filter_type_decodes_like_pillow(shape, dtype):
    a = _image(shape, dtype, seed=2)
    data = _filtered_png(a)
    assert np.array_equal(iio.imread(data, extension=".png"), a)  # the file is right
    assert np.array_equal(decode_png(data), a)


# --- EXR ---------------------------------------------------------------------------

@pytest.fixture
def OpenEXR():
    return pytest.importorskip("OpenEXR")


def _exr_channels(h, w, seed=0):
    rng = np.random.default_rng(seed)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 3.4e38, -1.5], np.float32)
    return {"Z": rng.standard_normal((h, w)).astype(np.float32) * 10,
            "depth.V": np.resize(special, (h, w)),  # a layered name, and NaN/inf/denormals
            "A": np.full((h, w), 0.5, np.float32)}


@pytest.mark.parametrize("h,w", SIZES)
def test_exr_written_by_the_numpy_codec_reads_the_same_in_openexr(tmp_path, monkeypatch, OpenEXR, h, w):
    monkeypatch.setattr(exr, "_openexr", None)  # as in Blender's Python
    ch = _exr_channels(h, w)
    exr.write_exr(tmp_path / "a.exr", ch)
    with OpenEXR.File(str(tmp_path / "a.exr"), separate_channels=True) as f:
        got = {k: np.asarray(v.pixels) for k, v in f.channels().items()}
    assert got.keys() == ch.keys()
    for k in ch:
        assert got[k].dtype == np.float32 and got[k].shape == (h, w)
        assert np.array_equal(got[k], ch[k], equal_nan=True)
        assert np.array_equal(np.signbit(got[k]), np.signbit(ch[k]))  # -0.0 stays -0.0


@pytest.mark.parametrize("h,w", SIZES)
@pytest.mark.parametrize("header", [{}, {"lineOrder": "DECREASING_Y"}, {"dataWindow": (3, 2)}])
def test_exr_written_by_openexr_reads_the_same_in_the_numpy_codec(tmp_path, monkeypatch, OpenEXR, h, w, header):
    ch = _exr_channels(h, w, seed=1)
    rng = np.random.default_rng(2)
    ch["H"] = rng.standard_normal((h, w)).astype(np.float16)  # half and uint channels read too
    ch["U"] = rng.integers(0, 2**32, (h, w), dtype=np.uint32)
    hdr = {"compression": OpenEXR.NO_COMPRESSION, "type": OpenEXR.scanlineimage}
    if "lineOrder" in header:
        hdr["lineOrder"] = OpenEXR.DECREASING_Y
    if "dataWindow" in header:  # pixels that do not start at (0, 0)
        x0, y0 = header["dataWindow"]
        hdr["dataWindow"] = (np.array([x0, y0], np.int32), np.array([x0 + w - 1, y0 + h - 1], np.int32))
    with OpenEXR.File(hdr, dict(ch)) as f:  # the binding replaces the dict's values: pass a copy
        f.write(str(tmp_path / "b.exr"))
    monkeypatch.setattr(exr, "_openexr", None)
    got = exr.read_exr(tmp_path / "b.exr")
    assert got.keys() == ch.keys()
    for k, v in ch.items():
        want = v.astype(np.uint32 if v.dtype == np.uint32 else np.float32)
        assert got[k].dtype == want.dtype and np.array_equal(got[k], want, equal_nan=True)


def test_exr_the_numpy_codec_cannot_read_says_which_package_to_install(tmp_path, monkeypatch, OpenEXR):
    ch = _exr_channels(4, 6)
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, dict(ch)) as f:
        f.write(str(tmp_path / "zip.exr"))
    tiles = OpenEXR.TileDescription()
    tiles.xSize = tiles.ySize = 4
    with OpenEXR.File({"compression": OpenEXR.NO_COMPRESSION, "type": OpenEXR.tiledimage, "tiles": tiles},
                      dict(ch)) as f:
        f.write(str(tmp_path / "tiled.exr"))
    monkeypatch.setattr(exr, "_openexr", None)
    for name in ("zip.exr", "tiled.exr"):
        with pytest.raises(exr.EXRError, match=r"needs the openexr package"):
            exr.read_exr(tmp_path / name)


# --- meshes ------------------------------------------------------------------------

def _same_triangles(ours: np.ndarray, theirs: np.ndarray, tol: float) -> None:
    """``ours`` is ``theirs`` in the same order, less only triangles with an edge shorter
    than ``tol`` (welding collapses those); corners agree within ``tol``."""
    shortest = np.min([np.linalg.norm(theirs[:, i] - theirs[:, (i + 1) % 3], axis=-1) for i in range(3)], axis=0)
    if len(ours) == len(theirs):
        assert np.abs(ours - theirs).max() <= tol
        return
    i = 0
    for j in range(len(theirs)):
        if i < len(ours) and np.abs(ours[i] - theirs[j]).max() <= tol:
            i += 1
        else:
            assert shortest[j] < tol, f"triangle {j} ({theirs[j].tolist()}) is missing or different"
    assert i == len(ours)


def _both(path):
    trimesh = pytest.importorskip("trimesh")
    from sim2real.scene.meshio import load_mesh

    v, f = load_mesh(path)
    t = trimesh.load(str(path), process=False, force="mesh")
    tol = 2e-6 * max(float(np.abs(v).max()), 1e-12)  # load_mesh welds at 1e-6 of the extent
    return v[f], np.asarray(t.vertices)[np.asarray(t.faces)], tol


def _sphere():
    trimesh = pytest.importorskip("trimesh")
    m = trimesh.creation.icosphere(subdivisions=1)
    m.vertices = m.vertices * [0.03, 0.05, 0.02] + [0.1, -0.2, 0.05]  # metres, off-centre, not round
    return m


@pytest.mark.parametrize("name", ["binary.stl", "ascii.stl", "binary.ply", "ascii.ply", "mesh.obj"])
def test_mesh_exported_by_trimesh_reads_the_same_here(tmp_path, name):
    trimesh = pytest.importorskip("trimesh")
    m = _sphere()
    ex = trimesh.exchange
    data = {"binary.stl": lambda: ex.stl.export_stl(m), "ascii.stl": lambda: ex.stl.export_stl_ascii(m),
            "binary.ply": lambda: ex.ply.export_ply(m, encoding="binary"),
            "ascii.ply": lambda: ex.ply.export_ply(m, encoding="ascii"),
            "mesh.obj": lambda: ex.obj.export_obj(m)}[name]()
    (tmp_path / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    ours, theirs, tol = _both(tmp_path / name)
    assert len(ours) == len(m.faces) == 80
    _same_triangles(ours, theirs, tol)


PYRAMID = ([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (0.5, 0.5, 1)],
           [(0, 3, 2, 1), (0, 1, 4), (1, 2, 4), (2, 3, 4), (3, 0, 4)])  # a quad base and 4 triangles
CUBE = ([(x, y, z) for x in (0, 1) for y in (0, 2) for z in (0, 3)],
        [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)])  # all quads


def _ply(fmt: str, mesh=PYRAMID) -> bytes:
    """A PLY with extra vertex properties (coordinates as double, float normals, a uchar colour)."""
    verts, polys = mesh
    head = (f"ply\nformat {fmt} 1.0\ncomment made by a test\nelement vertex {len(verts)}\n"
            "property double x\nproperty double y\nproperty double z\nproperty float nx\nproperty float ny\n"
            "property float nz\nproperty uchar red\n"
            f"element face {len(polys)}\nproperty list uchar int vertex_indices\nend_header\n").encode()
    if fmt == "ascii":
        body = "".join(f"{x} {y} {z} 0 0 1 200\n" for x, y, z in verts)
        body += "".join(f"{len(p)} {' '.join(map(str, p))}\n" for p in polys)
        return head + body.encode()
    e = "<" if fmt == "binary_little_endian" else ">"
    body = b"".join(struct.pack(e + "dddfffB", x, y, z, 0, 0, 1, 200) for x, y, z in verts)
    body += b"".join(struct.pack(e + "B" + "i" * len(p), len(p), *p) for p in polys)
    return head + body


def _canonical(tris: np.ndarray) -> np.ndarray:
    """Triangles as sorted rows, each rolled to start at its smallest corner (winding kept)."""
    rows = []
    for t in np.asarray(tris, np.float64):
        k = min(range(3), key=lambda i: tuple(t[i]))
        rows.append(np.roll(t, -k, axis=0).ravel())
    rows = np.array(rows)
    return rows[np.lexsort(rows.T[::-1])]


def _n_triangles(mesh) -> int:
    return sum(len(p) - 2 for p in mesh[1])


_V = PYRAMID[0]
HAND_WRITTEN = {
    "ascii.ply": (_ply("ascii"), PYRAMID),
    "le.ply": (_ply("binary_little_endian", CUBE), CUBE),  # trimesh reads binary polygons of one size only
    "be.ply": (_ply("binary_big_endian", CUBE), CUBE),
    "faces.obj": (("# a pyramid\no pyramid\n" + "".join(f"v {x} {y} {z}\n" for x, y, z in _V)
                   + "vn 0 0 1\nvt 0 0\n"  # faces as v, v/vt, v//vn, v/vt/vn and negative indices
                   + "f 1 4 3 2\nf 1/1 2/1 5/1\nf 2//1 3//1 5//1\nf 3/1/1 4/1/1 5/1/1\nf -2 -5 -1\n").encode(),
                  PYRAMID),
    "ascii.stl": (("solid pyramid\n" + "".join(
        "  facet normal 0 0 0\n    outer loop\n" + "".join(f"      vertex {x:e} {y:e} {z:e}\n" for x, y, z in tri)
        + "    endloop\n  endfacet\n" for tri in np.array(_V)[[(0, 3, 2), (0, 2, 1), *PYRAMID[1][1:]]])
        + "endsolid pyramid\n").encode(), PYRAMID),
}


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_hand_written_mesh_files_read_like_trimesh(tmp_path, name):
    data, mesh = HAND_WRITTEN[name]
    (tmp_path / name).write_bytes(data)
    ours, theirs, tol = _both(tmp_path / name)
    assert len(ours) == _n_triangles(mesh)  # each quad is two triangles
    # polygons may be fanned into triangles in a different order: compare as sets of triangles
    assert np.allclose(_canonical(ours), _canonical(theirs), atol=tol)


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian"])
def test_binary_ply_of_mixed_polygons_reads_like_its_ascii_twin_in_trimesh(tmp_path, fmt):
    from sim2real.scene.meshio import load_mesh

    (tmp_path / "mixed.ply").write_bytes(_ply(fmt))
    (tmp_path / "ascii.ply").write_bytes(_ply("ascii"))
    v, f = load_mesh(tmp_path / "mixed.ply")
    _, theirs, tol = _both(tmp_path / "ascii.ply")
    assert len(f) == _n_triangles(PYRAMID)
    assert np.allclose(_canonical(v[f]), _canonical(theirs), atol=tol)


@pytest.mark.shared_data
def test_patient_meshes_read_like_trimesh(shared_data):
    paths = sorted((shared_data / "meshes").glob("*/*.stl")) + sorted((shared_data / "meshes").glob("*/*.ply"))
    assert paths
    for path in paths:
        ours, theirs, tol = _both(path)
        assert len(ours) > 0.99 * len(theirs), path
        _same_triangles(ours, theirs, tol)
