"""The thin bpy layer: turns a SceneDescription into Blender objects and renders passes.

This is the only package that imports bpy, always through :func:`require_bpy`.
"""

from __future__ import annotations

import sys

from ..errors import Sim2RealError, one_line

INSTALL_HINT = ("the bpy module is not installed: run  pip install -e '.[blender]'  (bpy 4.5 LTS, Python 3.11), "
                "or render with a Blender binary:  sim2real render --blender /path/to/blender ...")


class BpyMissing(Sim2RealError):
    pass


BPY_PYTHON = (3, 11)  # bpy 4.5 LTS, the [blender] extra, is built for this Python only


def _python() -> tuple[int, int]:
    return sys.version_info[:2]


def require_bpy():
    """Import and return bpy, or raise one friendly error saying how to get it."""
    try:
        import bpy  # noqa: F401
    except ImportError as exc:
        if getattr(exc, "name", None) == "bpy" and _python() != BPY_PYTHON:
            # pip skips the [blender] extra here (its marker), so the usual hint would not help
            have, need = ".".join(map(str, _python())), ".".join(map(str, BPY_PYTHON))
            raise BpyMissing(f"the bpy module is not installed, and bpy 4.5 LTS (the [blender] extra) exists for "
                             f"Python {need} only, this is Python {have}: install sim2real into a Python {need} "
                             f"environment (python{need} -m venv .venv), or render with a Blender binary:  "
                             f"sim2real render --blender /path/to/blender ...") from None
        detail = "" if getattr(exc, "name", None) == "bpy" else f" (import failed: {one_line(exc)})"
        raise BpyMissing(INSTALL_HINT + detail) from None
    return bpy
