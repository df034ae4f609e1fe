"""A minimal lossless PNG codec in numpy + zlib, for Blender's bundled Python.

Blender ships numpy but not imageio, and the add-on must write the same files as the
CLI there. :func:`sim2real.io.write_png` uses imageio when importable and this module
otherwise. Supported: 8-bit grey/RGB/RGBA and 16-bit grey, non-interlaced — what the
data-set writer produces (reading also accepts any filter type and 16-bit RGB).
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of uint8 (H, W), (H, W, 3), (H, W, 4) or uint16 (H, W)."""
    a = np.asarray(array)
    if a.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG needs uint8 or uint16, got {a.dtype}")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in _COLOR_TYPES:
        raise ValueError(f"PNG needs (H, W) or (H, W, 3|4), got shape {array.shape}")
    h, w, c = a.shape
    depth = 16 if a.dtype == np.uint16 else 8
    rows = np.ascontiguousarray(a.astype(">u2") if depth == 16 else a).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows.view(np.uint8).reshape(h, -1)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, depth, _COLOR_TYPES[c], 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + _chunk(b"IEND", b""))


def decode_png(data: bytes) -> np.ndarray:
    """The pixels of a non-interlaced, non-palette PNG as (H, W) or (H, W, C)."""
    if data[:8] != _SIGNATURE:
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG has no IHDR chunk")
    w, h, depth, ctype, _, _, interlace = header
    if ctype not in _CHANNELS or depth not in (8, 16) or interlace:
        raise ValueError(f"unsupported PNG (colour type {ctype}, depth {depth}, interlace {interlace})")
    c, bpp = _CHANNELS[ctype], _CHANNELS[ctype] * depth // 8
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + w * bpp)
    out = np.zeros((h, w * bpp), np.uint8)
    prev = np.zeros(w * bpp, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 0xFF
        else:  # sub, average, Paeth depend on the pixel to the left: go byte by byte
            cur = np.zeros_like(line)
            for x in range(len(line)):
                left = cur[x - bpp] if x >= bpp else 0
                up, ul = prev[x], (prev[x - bpp] if x >= bpp else 0)
                if f == 1:
                    pred = left
                elif f == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - ul
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                    pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                cur[x] = (line[x] + pred) & 0xFF
        out[y] = cur
        prev = cur
    pix = out.view(">u2").astype(np.uint16) if depth == 16 else out
    pix = pix.reshape(h, w, c)
    return pix[..., 0] if c == 1 else pix


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        f.write(encode_png(array))


def read_png(path: str | os.PathLike) -> np.ndarray:
    with open(path, "rb") as f:
        return decode_png(f.read())
