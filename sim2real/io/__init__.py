"""File I/O shared by every writer: atomic writes, hard links, PNG and JSON."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: os.umask is process-wide and not thread-safe to query


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; written files get what open() would give
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n").encode())


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_jsonable(obj):
    """Round-trip through JSON so numpy values become plain Python values."""
    return json.loads(json.dumps(obj, default=_json_default))


def read_json(path: str | os.PathLike):
    with open(path, "rb") as f:
        return json.loads(f.read())


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary directory beside ``path``; rename it to ``path`` on success.

    The rename is the commit point: a process killed at any moment leaves either the
    complete directory or a ``.*.partial`` one that :func:`clean_partials` removes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_owner()}.", suffix=".partial", dir=path.parent))
    try:
        yield tmp
        if path.exists():  # a concurrent worker finished it first; keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _owner() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _owner_dead(name: str) -> bool:
    """True if a temp name was made by a process of this host that no longer runs.

    Partial folders of other hosts (shards on a cluster sharing the folder) or of live
    processes are left alone; they are hidden and never read.
    """
    host = socket.gethostname()
    for part in name.split("."):
        if part.startswith(host + "-"):
            pid = part[len(host) + 1:]
            if pid.isdigit():
                try:
                    os.kill(int(pid), 0)
                except ProcessLookupError:
                    return True
                except PermissionError:
                    return False
                return False
    return False


def clean_partials(folder: str | os.PathLike) -> int:
    """Remove leftovers of interrupted :func:`atomic_dir` writes by dead processes of this host."""
    folder = Path(folder)
    n = 0
    if folder.is_dir():
        for p in folder.glob(".*.partial"):
            if _owner_dead(p.name):
                shutil.rmtree(p, ignore_errors=True)
                n += 1
    return n


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> str:
    """Hard-link ``src`` to ``dst`` (byte-identical, no extra space); copy (keeping the
    modification time, so a rerun can tell the copy is current) where links fail."""
    try:
        os.link(src, dst)
        return "link"
    except OSError:
        shutil.copy2(src, dst)
        return "copy"


def write_png(path: str | os.PathLike, array: np.ndarray, compress_level: int = 6) -> None:
    """Write uint8 (H,W)/(H,W,3) or uint16 (H,W) as a lossless PNG.

    ``compress_level`` is zlib's 0..9 (imageio path): the render writer uses 1, as Blender
    does for its own PNGs (3x faster than 6 for files ~30 % larger)."""
    if array.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG needs uint8 or uint16, got {array.dtype}")
    try:
        import imageio.v3 as iio
    except ImportError:  # Blender's bundled Python (the add-on): numpy + zlib codec
        from .png import write_png as _write

        return _write(path, np.ascontiguousarray(array))
    iio.imwrite(path, np.ascontiguousarray(array), extension=".png", compress_level=compress_level)


def read_png(path: str | os.PathLike) -> np.ndarray:
    try:
        import imageio.v3 as iio
    except ImportError:  # Blender's bundled Python (the add-on)
        from .png import read_png as _read

        return _read(path)
    return np.asarray(iio.imread(path))


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read any image imageio knows as uint8 (H, W, 3); grayscale and RGBA are converted."""
    import imageio.v3 as iio

    img = np.asarray(iio.imread(path))
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3:
        raise ValueError(f"{path}: not an image (shape {img.shape})")
    if img.shape[2] == 4:
        img = img[..., :3]
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    return img.astype(np.uint8, copy=False)


def read_image_and_mask(image_path: str | os.PathLike, mask_path: str | os.PathLike):
    """A real frame (uint8 (H, W, 3)) and its label mask (uint8 (H, W)) of the same size;
    :class:`~sim2real.errors.DatasetError` (one line) when either is unreadable or they differ."""
    from ..errors import DatasetError, one_line

    image_path, mask_path = Path(image_path), Path(mask_path)
    try:
        img = read_image_rgb(image_path)
        mask = read_png(mask_path)
    except Exception as exc:  # imageio raises many types for broken files
        raise DatasetError(f"cannot read {image_path.name} or its mask: {one_line(exc)}") from None
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.shape != img.shape[:2]:
        raise DatasetError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, image is "
                           f"{img.shape[1]}x{img.shape[0]}")
    return img, mask
