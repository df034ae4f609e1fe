"""The class table: the one source of truth for segmentation ids, names and colours.

Ids 0..9 are fixed; a preset may add classes with ids from 10 up (``[[classes]]`` entries).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: tuple[int, int, int]

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "color": list(self.color)}


BASE_CLASSES: tuple[ClassInfo, ...] = (
    ClassInfo(0, "background", (0, 0, 0)),
    ClassInfo(1, "liver", (170, 40, 40)),
    ClassInfo(2, "gallbladder", (60, 180, 75)),
    ClassInfo(3, "fat", (255, 225, 25)),
    ClassInfo(4, "abdominal_wall", (245, 130, 180)),
    ClassInfo(5, "ligament", (145, 30, 180)),
    ClassInfo(6, "tool_shaft", (0, 130, 200)),
    ClassInfo(7, "tool_tip", (70, 240, 240)),
    ClassInfo(8, "cystic_duct", (210, 245, 60)),
    ClassInfo(9, "cystic_artery", (245, 130, 48)),
)
FIRST_EXTRA_ID = len(BASE_CLASSES)
INSTRUMENT_CLASSES = ("tool_shaft", "tool_tip")  # together: an instrument ("tool")
INSTRUMENT_IDS = tuple(c.id for c in BASE_CLASSES if c.name in INSTRUMENT_CLASSES)
MAX_CLASS_ID = 255  # segmentation is uint8

# Colours handed to extra classes that do not name one.
_EXTRA_PALETTE = (
    (230, 25, 75), (128, 128, 0), (0, 0, 128), (170, 110, 40), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (128, 0, 0), (170, 255, 195), (255, 215, 180),
)


class ClassTable:
    """An ordered, validated set of classes (the base table plus a preset's extras)."""

    def __init__(self, classes: list[ClassInfo] | tuple[ClassInfo, ...] = BASE_CLASSES):
        self.classes = tuple(sorted(classes, key=lambda c: c.id))
        self._by_name = {c.name: c for c in self.classes}
        self._by_id = {c.id: c for c in self.classes}
        if len(self._by_name) != len(self.classes) or len(self._by_id) != len(self.classes):
            raise ValueError("class names and ids must be unique")

    @classmethod
    def with_extras(cls, extras: list[dict]) -> "ClassTable":
        """The base table plus extra classes given as ``{"name", "id"?, "color"?}`` dicts."""
        classes = list(BASE_CLASSES)
        next_id = FIRST_EXTRA_ID
        for i, extra in enumerate(extras):
            cid = int(extra.get("id", next_id))
            color = tuple(int(v) for v in extra.get("color", _EXTRA_PALETTE[i % len(_EXTRA_PALETTE)]))
            classes.append(ClassInfo(cid, str(extra["name"]), color))  # type: ignore[arg-type]
            next_id = max(next_id, cid + 1)
        return cls(classes)

    @classmethod
    def from_json(cls, items: list[dict]) -> "ClassTable":
        return cls([ClassInfo(int(c["id"]), str(c["name"]), tuple(c["color"])) for c in items])

    def to_json(self) -> list[dict]:
        return [c.to_json() for c in self.classes]

    def id_of(self, name: str) -> int:
        try:
            return self._by_name[name].id
        except KeyError:
            raise KeyError(f"unknown class {name!r}; known: {', '.join(self.names)}") from None

    def __contains__(self, key: int | str) -> bool:
        return key in self._by_name or key in self._by_id

    def __getitem__(self, cid: int) -> ClassInfo:
        return self._by_id[cid]

    def __iter__(self):
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.classes]

    def palette(self):
        """A (256, 3) uint8 lookup table id -> colour (unknown ids are magenta)."""
        import numpy as np

        lut = np.zeros((256, 3), np.uint8)
        lut[:] = (255, 0, 255)
        for c in self.classes:
            lut[c.id] = c.color
        return lut


DEFAULT_TABLE = ClassTable()

IGNORE_ID = 255  # training id of pixels a loss or metric skips (segmentation is uint8)


def group_lut(groups: list[list[int]], ignore: tuple[int, ...] = ()):
    """A (256,) uint8 lookup table raw label value -> training id.

    Values in ``groups[i]`` map to ``i + 1``, values in ``ignore`` to :data:`IGNORE_ID`,
    every other value to 0 (background). A value both grouped and ignored is grouped.
    """
    import numpy as np

    lut = np.zeros(256, np.uint8)
    for v in ignore:
        lut[v] = IGNORE_ID
    for i, values in enumerate(groups):
        for v in values:
            lut[v] = i + 1
    return lut
