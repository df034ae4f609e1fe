"""The thin bpy layer: turns a SceneDescription into Blender objects and renders passes.

This is the only package that imports bpy, always through :func:`require_bpy`.
"""

from __future__ import annotations

from ..errors import Sim2RealError, one_line

INSTALL_HINT = ("the bpy module is not installed: run  pip install -e '.[blender]'  (bpy 4.5 LTS, Python 3.11), "
                "or render with a Blender binary:  sim2real render --blender /path/to/blender ...")


class BpyMissing(Sim2RealError):
    pass


def require_bpy():
    """Import and return bpy, or raise one friendly error saying how to get it."""
    try:
        import bpy  # noqa: F401
    except ImportError as exc:
        detail = "" if getattr(exc, "name", None) == "bpy" else f" (import failed: {one_line(exc)})"
        raise BpyMissing(INSTALL_HINT + detail) from None
    return bpy
