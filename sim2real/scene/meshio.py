"""Read triangle meshes (STL binary/ASCII, PLY binary/ASCII, OBJ) into numpy, with no bpy.

Patient meshes are read here so that a bad file fails before Blender starts, and so the
sampler can place the camera with ray tests against the same triangles Blender renders.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..errors import ConfigError, one_line

_PLY_TYPES = {"char": "i1", "uchar": "u1", "short": "i2", "ushort": "u2", "int": "i4", "uint": "u4",
              "float": "f4", "double": "f8", "int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2",
              "int32": "i4", "uint32": "u4", "float32": "f4", "float64": "f8"}


class MeshError(ConfigError):
    pass


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (N, 3) float64, faces (M, 3) int32) with duplicate vertices welded."""
    path = Path(path)
    if path.is_dir():
        raise MeshError(f"mesh {path}: is a folder, not a mesh file; give the path of an STL, PLY or OBJ file")
    if not path.is_file():
        raise MeshError(f"mesh {path}: file not found; check the path in the preset")
    ext = path.suffix.lower()
    try:
        if ext == ".stl":
            v, f = _read_stl(path)
        elif ext == ".ply":
            v, f = _read_ply(path)
        elif ext == ".obj":
            v, f = _read_obj(path)
        else:
            raise MeshError(f"mesh {path}: unsupported format {ext!r}; use STL, PLY or OBJ")
    except MeshError:
        raise
    except Exception as exc:  # malformed files raise all sorts of things
        raise MeshError(f"mesh {path}: unreadable {ext[1:].upper()} file ({one_line(exc, with_type=True)}); "
                        f"re-export it as binary STL or PLY") from None
    if len(f) == 0 or len(v) < 3:
        raise MeshError(f"mesh {path}: no triangles found")
    if not np.all(np.isfinite(v)):
        raise MeshError(f"mesh {path}: vertex coordinates are not all finite")
    if f.min() < 0 or f.max() >= len(v):
        raise MeshError(f"mesh {path}: face indices out of range")
    return weld(v, f)


def weld(v: np.ndarray, f: np.ndarray, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices (STL stores each triangle's corners separately) and drop
    degenerate faces, so smooth shading works."""
    scale = max(float(np.abs(v).max()), 1e-12)
    key = np.round(v / (scale * tol)).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    v2 = v[first]
    f2 = inverse[f]
    ok = (f2[:, 0] != f2[:, 1]) & (f2[:, 1] != f2[:, 2]) & (f2[:, 0] != f2[:, 2])
    return v2.astype(np.float64), f2[ok].astype(np.int32)


def _read_stl(path: Path):
    data = path.read_bytes()
    if len(data) >= 84:
        n = struct.unpack_from("<I", data, 80)[0]
        if 84 + 50 * n == len(data):
            rec = np.frombuffer(data, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]),
                                count=n, offset=84)
            v = rec["v"].reshape(-1, 3).astype(np.float64)
            return v, np.arange(len(v), dtype=np.int32).reshape(-1, 3)
    try:
        text = data.decode("ascii", errors="strict")
    except UnicodeDecodeError:  # binary, but not the size its triangle count says: damaged or not STL
        n = struct.unpack_from("<I", data, 80)[0] if len(data) >= 84 else 0
        raise MeshError(f"mesh {path}: not a readable STL file: not ASCII, and its {len(data)} bytes do not match "
                        f"the {84 + 50 * n} bytes of a binary STL of {n} triangles (its header's count); the file "
                        f"is damaged or not an STL, re-export it as binary STL or PLY") from None
    if "facet" not in text:
        raise MeshError(f"mesh {path}: neither binary nor ASCII STL")
    verts = [list(map(float, line.split()[1:4])) for line in text.splitlines() if line.strip().startswith("vertex")]
    v = np.asarray(verts, np.float64)
    if len(v) % 3:
        raise MeshError(f"mesh {path}: ASCII STL with a vertex count not divisible by 3")
    return v, np.arange(len(v), dtype=np.int32).reshape(-1, 3)


def _read_ply(path: Path):
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise MeshError(f"mesh {path}: not a PLY file")
    try:
        header = data[:end].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise MeshError(f"mesh {path}: damaged PLY header (not ASCII text); re-export it as binary PLY or STL") from None
    body_start = data.index(b"\n", end) + 1
    fmt = next(line.split()[1] for line in header if line.startswith("format"))
    elements = []
    for line in header:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "element":
            elements.append({"name": parts[1], "count": int(parts[2]), "props": []})
        elif parts[0] == "property":
            elements[-1]["props"].append(parts[1:])
    if fmt == "ascii":
        tokens = data[body_start:].split()
        pos = 0
        verts = faces = None
        for el in elements:
            if el["name"] == "vertex":
                k = len(el["props"])
                arr = np.array(tokens[pos:pos + k * el["count"]], dtype=np.float64).reshape(el["count"], k)
                names = [p[-1] for p in el["props"]]
                verts = arr[:, [names.index(c) for c in "xyz"]]
                pos += k * el["count"]
            elif el["name"] == "face":
                faces = []
                for _ in range(el["count"]):
                    n = int(tokens[pos])
                    idx = [int(t) for t in tokens[pos + 1:pos + 1 + n]]
                    faces += [(idx[0], idx[i], idx[i + 1]) for i in range(1, n - 1)]
                    pos += 1 + n
            else:
                raise MeshError(f"mesh {path}: ASCII PLY element {el['name']!r} not supported")
        return verts, np.asarray(faces, np.int32)
    endian = "<" if fmt == "binary_little_endian" else ">"
    pos = body_start
    verts = faces = None
    for el in elements:
        if el["name"] == "face" or any(p[0] == "list" for p in el["props"]):
            if len(el["props"]) != 1 or el["props"][0][0] != "list":
                raise MeshError(f"mesh {path}: PLY faces with extra properties are not supported")
            _, ct, it, _name = el["props"][0]
            cdt, idt = np.dtype(endian + _PLY_TYPES[ct]), np.dtype(endian + _PLY_TYPES[it])
            first_n = int(np.frombuffer(data, cdt, 1, pos)[0])
            rec = np.dtype([("n", cdt), ("i", idt, first_n)])
            fits = pos + rec.itemsize * el["count"] <= len(data)  # mixed sizes may be shorter
            arr = np.frombuffer(data, rec, el["count"], pos) if fits else None
            if fits and np.all(arr["n"] == first_n):  # the usual case: all triangles (or all quads)
                idx = arr["i"].astype(np.int64)
                faces = np.concatenate([idx[:, [0, i, i + 1]] for i in range(1, first_n - 1)])
                pos += rec.itemsize * el["count"]
            else:
                out = []
                for _ in range(el["count"]):
                    n = int(np.frombuffer(data, cdt, 1, pos)[0])
                    idx = np.frombuffer(data, idt, n, pos + cdt.itemsize)
                    out += [(idx[0], idx[i], idx[i + 1]) for i in range(1, n - 1)]
                    pos += cdt.itemsize + n * idt.itemsize
                faces = np.asarray(out)
        else:
            rec = np.dtype([(p[1], endian + _PLY_TYPES[p[0]]) for p in el["props"]])
            arr = np.frombuffer(data, rec, el["count"], pos)
            pos += rec.itemsize * el["count"]
            if el["name"] == "vertex":
                verts = np.stack([arr[c].astype(np.float64) for c in "xyz"], -1)
    if verts is None or faces is None:
        raise MeshError(f"mesh {path}: PLY without vertex and face elements")
    return verts, np.asarray(faces, np.int32)


def _read_obj(path: Path):
    verts, faces = [], []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("v "):
            verts.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            idx = [int(t.split("/")[0]) for t in line.split()[1:]]
            idx = [i - 1 if i > 0 else len(verts) + i for i in idx]
            faces += [(idx[0], idx[i], idx[i + 1]) for i in range(1, len(idx) - 1)]
    return np.asarray(verts, np.float64), np.asarray(faces, np.int32)
