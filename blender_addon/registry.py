"""Class registration that survives reloads: enabling the add-on twice, or after its
modules were reloaded, finds and removes the registered twins of our classes first."""

from __future__ import annotations

import bpy


def _registered_twins(cls):
    base = next(b for b in cls.__mro__[1:] if getattr(bpy.types, b.__name__, None) is b)
    return [c for c in base.__subclasses__() if c.__name__ == cls.__name__ and c.is_registered]


def register_classes(classes) -> None:
    unregister_classes(classes)
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister_classes(classes) -> None:
    for cls in reversed(classes):
        for twin in _registered_twins(cls):
            bpy.utils.unregister_class(twin)
