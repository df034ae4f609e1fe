"""Sim2Real: a Blender panel over the sim2real core (build, label, preview, render, translate).

The extension zip bundles the core (``sim2real/``) and the presets (``scenes/``), so it runs
in Blender's own Python; build it with ``sim2real addon build --out DIR``. Everything the
panel does calls the same functions as the ``sim2real`` CLI and the headless script.
"""

from __future__ import annotations

from . import operators, panel, props, tasks

_MODULES = (props, operators, panel)


def register() -> None:
    """Register every class and property; safe to call again while registered."""
    unregister()  # enabling twice (or after a reload) must not fail on leftovers
    for m in _MODULES:
        m.register()


def unregister() -> None:
    """Stop background jobs and remove everything :func:`register` added."""
    tasks.stop_all()
    for m in reversed(_MODULES):
        m.unregister()
