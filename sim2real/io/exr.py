"""The one EXR module: read and write float32 EXR channels.

Uses the ``openexr`` package when importable. Blender's bundled Python lacks it, so a
small pure-numpy codec handles *uncompressed* scanline files (which is what the render
step asks Blender for); compressed files then need ``openexr``.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..errors import one_line
from . import atomic_path

try:  # pragma: no cover - exercised by whichever environment runs
    import OpenEXR as _openexr
except ImportError:  # Blender's own Python
    _openexr = None

_MAGIC = 20000630
_PIXEL = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}  # UINT, HALF, FLOAT


class EXRError(ValueError):
    pass


def read_exr(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All channels of a scanline EXR as ``{name: (H, W) array}`` (float32 or uint32)."""
    path = Path(path)
    if _openexr is not None:
        try:
            with _openexr.File(str(path), separate_channels=True) as f:
                return {k: np.asarray(v.pixels) for k, v in f.channels().items()}
        except Exception as exc:  # the binding raises bare RuntimeErrors
            raise EXRError(f"{path}: not a readable EXR file ({one_line(exc)})") from None
    return _read_uncompressed(path)


def write_exr(path: str | os.PathLike, channels: dict[str, np.ndarray], compress: bool = True) -> None:
    """Atomically write float32 channels (each (H, W)) to a single-part scanline EXR."""
    channels = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in channels.items()}
    with atomic_path(path) as tmp:
        if _openexr is not None:
            comp = _openexr.ZIP_COMPRESSION if compress else _openexr.NO_COMPRESSION
            header = {"compression": comp, "type": _openexr.scanlineimage}
            with _openexr.File(header, channels) as f:
                f.write(str(tmp))
        else:
            _write_uncompressed(tmp, channels)


# --- pure-numpy codec for uncompressed scanline files ---------------------------------

def _read_uncompressed(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    if len(data) < 8 or struct.unpack_from("<i", data, 0)[0] != _MAGIC:
        raise EXRError(f"{path}: not an EXR file")
    flags = struct.unpack_from("<I", data, 4)[0]
    if flags & 0x1E00:  # tiled, long names OK, deep or multi-part
        if flags & (0x200 | 0x800 | 0x1000):
            raise EXRError(f"{path}: tiled/deep/multi-part EXR needs the openexr package")
    pos = 8
    header = {}
    while data[pos] != 0:
        name_end = data.index(b"\0", pos)
        name = data[pos:name_end].decode()
        type_end = data.index(b"\0", name_end + 1)
        atype = data[name_end + 1:type_end].decode()
        size = struct.unpack_from("<i", data, type_end + 1)[0]
        start = type_end + 5
        header[name] = (atype, data[start:start + size])
        pos = start + size
    pos += 1
    if header["compression"][1][0] != 0:
        raise EXRError(f"{path}: compressed EXR needs the openexr package (pip install openexr)")
    chl = header["channels"][1]
    chans = []
    p = 0
    while chl[p] != 0:
        end = chl.index(b"\0", p)
        cname = chl[p:end].decode()
        ptype = struct.unpack_from("<i", chl, end + 1)[0]
        chans.append((cname, _PIXEL[ptype]))
        p = end + 1 + 16
    x0, y0, x1, y1 = struct.unpack("<iiii", header["dataWindow"][1])
    w, h = x1 - x0 + 1, y1 - y0 + 1
    offsets = np.frombuffer(data, "<u8", count=h, offset=pos)
    out = {c: np.empty((h, w), dt) for c, dt in chans}
    for off in offsets:
        y, _size = struct.unpack_from("<ii", data, int(off))
        q = int(off) + 8
        for cname, dt in chans:
            n = w * dt.itemsize
            out[cname][y - y0] = np.frombuffer(data, dt, count=w, offset=q)
            q += n
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v.astype(np.uint32)) for k, v in out.items()}


def _attr(name: str, atype: str, value: bytes) -> bytes:
    return name.encode() + b"\0" + atype.encode() + b"\0" + struct.pack("<i", len(value)) + value


def _write_uncompressed(path: Path, channels: dict[str, np.ndarray]) -> None:
    names = sorted(channels)
    h, w = channels[names[0]].shape
    chlist = b"".join(n.encode() + b"\0" + struct.pack("<iBBBBii", 2, 0, 0, 0, 0, 1, 1) for n in names) + b"\0"
    box = struct.pack("<iiii", 0, 0, w - 1, h - 1)
    header = (
        struct.pack("<iI", _MAGIC, 2)
        + _attr("channels", "chlist", chlist)
        + _attr("compression", "compression", b"\0")
        + _attr("dataWindow", "box2i", box)
        + _attr("displayWindow", "box2i", box)
        + _attr("lineOrder", "lineOrder", b"\0")
        + _attr("pixelAspectRatio", "float", struct.pack("<f", 1.0))
        + _attr("screenWindowCenter", "v2f", struct.pack("<ff", 0, 0))
        + _attr("screenWindowWidth", "float", struct.pack("<f", 1.0))
        + b"\0"
    )
    line = 8 + 4 * w * len(names)
    start = len(header) + 8 * h
    offsets = np.arange(h, dtype="<u8") * line + start
    with open(path, "wb") as f:
        f.write(header)
        f.write(offsets.tobytes())
        for y in range(h):
            f.write(struct.pack("<ii", y, 4 * w * len(names)))
            for n in names:
                f.write(channels[n][y].astype("<f4").tobytes())
