"""Where the sim2real core comes from: the copy bundled in the extension zip, or (in a
development checkout run with the package installed) the installed package."""

from __future__ import annotations

import importlib
from pathlib import Path

try:
    from . import sim2real as package  # the installed extension
except ImportError:  # blender_addon/ used from a source checkout
    import sim2real as package


def module(name: str):
    """A core module by its name inside the package, e.g. ``module("config")``."""
    return importlib.import_module(f"{package.__name__}.{name}")


def root() -> Path:
    """The folder holding the ``sim2real`` package (and ``scenes/``)."""
    return Path(package.__file__).resolve().parent.parent


def render_script() -> Path:
    """The headless script (``blender -b -P render.py`` / ``python render.py``)."""
    return Path(package.__file__).resolve().parent / "render.py"
