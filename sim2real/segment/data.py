"""Labelled images for segmentation: sim2real data sets and real image + mask folders.

Every source is turned into the same thing: :class:`Item` objects whose labels use the
*training* ids ``0 = background, 1.. = the chosen classes in order, 255 = ignore``.

- A sim2real data set (``dataset.json``; rendered or translated) maps its class table by
  name: a target class takes the data-set class of the same name, or every class named
  ``<target>_*`` (so ``tool`` = ``tool_shaft`` + ``tool_tip``), unless ``sim_map`` says
  otherwise (``{"tool": ["tool_shaft", "tool_tip"]}``). Everything else is background.
- A real folder (``images/<stem>.jpg|png`` + ``masks/<stem>.png``) maps raw mask values with
  a user-given ``real_map`` (``{"gallbladder": [5], "tool": [6]}``); ``ignore`` values (255)
  stay ignored; every other value is background.

Frames are grouped by *video* (``<video>_<frame>`` stems; translated variants are grouped
by their source render) so that splits never put one video on both sides.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..classes import IGNORE_ID, group_lut
from ..errors import DatasetError, Sim2RealError
from ..io.videos import parse_videos, video_of  # noqa: F401  (re-exported: one rule for every command)
from ..io.videos import select_videos, sort_videos

IGNORE = IGNORE_ID
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
DEFAULT_CLASSES = ("gallbladder", "tool")


@dataclass(frozen=True)
class Item:
    """One labelled image; ``load()`` returns (uint8 (H, W, 3) image, uint8 (H, W) training ids)."""

    id: str
    video: str
    source: str
    _load: Callable[[], tuple[np.ndarray, np.ndarray]]

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        return self._load()


# --------------------------------------------------------------------------- parsing

def parse_classes(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"gallbladder,tool"`` -> ``["gallbladder", "tool"]`` (unique, non-empty, not 'background')."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise Sim2RealError("--classes is empty; give class names like gallbladder,tool")
    if len(set(names)) != len(names):
        raise Sim2RealError(f"--classes has duplicates: {','.join(names)}")
    if "background" in names:
        raise Sim2RealError("--classes must not list 'background' (it is always class 0)")
    return names


def parse_mapping(text: str | dict | None, what: str, values_are_ints: bool) -> dict[str, list] | None:
    """``"gallbladder=5,tool=6+7"`` -> ``{"gallbladder": [5], "tool": [6, 7]}``."""
    if text is None or isinstance(text, dict):
        return None if text is None else {k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in text.items()}
    mapping: dict[str, list] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, values = part.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise Sim2RealError(f"{what} {text!r}: expected NAME=VALUE[+VALUE...] entries separated by commas, "
                                f"e.g. gallbladder=5,tool=6")
        vals: list = []
        for v in values.split("+"):
            v = v.strip()
            if values_are_ints:
                try:
                    iv = int(v)
                except ValueError:
                    raise Sim2RealError(f"{what} {text!r}: {v!r} is not an integer mask value") from None
                if not 0 <= iv <= 255:
                    raise Sim2RealError(f"{what} {text!r}: mask value {iv} is outside 0..255")
                vals.append(iv)
            else:
                vals.append(v)
        mapping.setdefault(name.strip(), []).extend(vals)
    if not mapping:
        raise Sim2RealError(f"{what} is empty; give NAME=VALUE entries, e.g. gallbladder=5,tool=6")
    return mapping


# --------------------------------------------------------------------------- lookup tables

def sim_groups(table, classes: list[str], sim_map: dict[str, list[str]] | None = None) -> list[list[int]]:
    """Data-set class ids per target class, by name (``tool`` -> ``tool_*``); clear error if none match."""
    groups = []
    used: dict[int, str] = {}
    for name in classes:
        if sim_map and name in sim_map:
            names = sim_map[name]
            missing = [n for n in names if n not in table.names]
            if missing:
                raise Sim2RealError(f"--sim-map {name}: the data set has no class {', '.join(missing)}; "
                                    f"it has {', '.join(table.names)}")
        elif name in table.names:
            names = [name]
        else:
            names = [n for n in table.names if n.startswith(name + "_")]
            if not names:
                raise Sim2RealError(f"class {name!r} is not in the data set (it has {', '.join(table.names)}); "
                                    f"map it with --sim-map {name}=CLASS[+CLASS...]")
        ids = [table.id_of(n) for n in names]
        for cid in ids:
            if cid in used:
                raise Sim2RealError(f"data-set class {table[cid].name!r} is mapped to both {used[cid]!r} and {name!r}")
            used[cid] = name
        groups.append(ids)
    return groups


# --------------------------------------------------------------------------- sources

def is_sim2real_dataset(path: str | os.PathLike) -> bool:
    return (Path(path) / "dataset.json").is_file()


def sim_items(root, classes: list[str], sim_map=None) -> list[Item]:
    """Items of a rendered or translated sim2real data set (variants grouped by source render)."""
    from ..dataset.format import open_dataset

    ds = open_dataset(root)
    if len(ds) == 0:
        raise DatasetError(f"{root}: the data set has no samples")
    lut = group_lut(sim_groups(ds.classes, classes, sim_map))
    items = []
    for sample in ds:
        group = sample.id.split("_style_")[0]  # variants of one render form one group

        def load(sample=sample):
            return sample.image(), lut[sample.segmentation()]

        items.append(Item(sample.id, group, str(root), load))
    return items


def real_items(root, classes: list[str], real_map: dict[str, list[int]] | None,
               ignore: tuple[int, ...] = (IGNORE,)) -> list[Item]:
    """Items of a folder ``images/<video>_<frame>.*`` + ``masks/<same stem>.png``."""
    from ..io import read_image_and_mask

    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise DatasetError(f"{root} is neither a sim2real data set (no dataset.json) nor a real labelled folder "
                           f"(needs images/ and masks/ sub-folders)")
    if not real_map:
        raise Sim2RealError(f"{root} is a folder of images and masks: say which mask values are which class "
                            f"with --real-map, e.g. gallbladder=5,tool=6")
    missing = [c for c in classes if c not in real_map]
    if missing:
        raise Sim2RealError(f"--real-map has no value for {', '.join(missing)} (classes: {', '.join(classes)})")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not images:
        raise DatasetError(f"{images_dir} holds no images (.jpg/.png)")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() == ".png"}
    lacking = [p.name for p in images if p.stem not in masks]
    if lacking:
        raise DatasetError(f"{masks_dir}: no mask for {len(lacking)} image(s), e.g. {lacking[0]} "
                           f"(expected masks/<stem>.png)")
    lut = group_lut([real_map[c] for c in classes], tuple(ignore))

    items = []
    for img_path in images:
        mask_path = masks[img_path.stem]

        def load(img_path=img_path, mask_path=mask_path):
            img, mask = read_image_and_mask(img_path, mask_path)
            return img, lut[mask.astype(np.uint8)]

        items.append(Item(img_path.stem, video_of(img_path.stem), str(root), load))
    return items


def load_items(paths, classes: list[str], real_map=None, sim_map=None, ignore=(IGNORE,),
               videos: list[str] | None = None, exclude_videos: list[str] | None = None) -> list[Item]:
    """Items of every source in ``paths`` (data sets or real folders), optionally filtered by video."""
    if not paths:
        raise Sim2RealError("no --data given")
    items: list[Item] = []
    for p in paths:
        if not Path(p).exists():
            raise DatasetError(f"{p} does not exist")
        if is_sim2real_dataset(p):
            items += sim_items(p, classes, sim_map)
        else:
            items += real_items(p, classes, real_map, ignore)
    return select_videos(items, videos, exclude_videos, ", ".join(map(str, paths)), key=lambda it: it.video,
                         what="labelled images")


# --------------------------------------------------------------------------- splits

def split_videos(videos, n_train: int | float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Shuffle the distinct videos with ``seed`` and cut: (train videos, held-out videos).

    ``n_train`` is a count (int >= 1) or a fraction in (0, 1). Both sides are non-empty and
    disjoint by construction: a video is either wholly in train or wholly held out.
    """
    distinct = sort_videos(videos)
    if len(distinct) < 2:
        raise Sim2RealError(f"need at least 2 videos to split, got {len(distinct)}")
    if isinstance(n_train, float) and 0 < n_train < 1:
        k = int(round(n_train * len(distinct)))
    else:
        k = int(n_train)
    if not 1 <= k < len(distinct):
        raise Sim2RealError(f"cannot put {n_train} of {len(distinct)} videos into training and keep some held out")
    order = np.random.default_rng(seed).permutation(len(distinct))
    train = sort_videos(distinct[i] for i in order[:k])
    held = sort_videos(distinct[i] for i in order[k:])
    return train, held


def split_items(items: list[Item], n_train: int | float, seed: int = 0) -> tuple[list[Item], list[Item]]:
    """Items split by :func:`split_videos` (never by frame)."""
    train_v, _ = split_videos([it.video for it in items], n_train, seed)
    train_set = set(train_v)
    return [it for it in items if it.video in train_set], [it for it in items if it.video not in train_set]


# --------------------------------------------------------------------------- tensors

def resize_image(img: np.ndarray, size: tuple[int, int]):
    """uint8 (H, W, 3) -> float32 tensor (3, h, w) in [0, 1] at ``size`` = (w, h), area-averaged."""
    import torch
    from torch.nn import functional as F

    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)[None]
    w, h = size
    if t.shape[-2:] != (h, w):
        mode = "area" if t.shape[-2] >= h and t.shape[-1] >= w else "bilinear"
        t = F.interpolate(t, size=(h, w), mode=mode, **({} if mode == "area" else {"align_corners": False}))
    return t[0].clamp_(0, 1)


def resize_label(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a uint8 label map to ``size`` = (w, h) (pixel centres)."""
    h0, w0 = label.shape
    w, h = size
    if (h0, w0) == (h, w):
        return label
    ys = np.minimum(((np.arange(h) + 0.5) * h0 / h).astype(np.int64), h0 - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * w0 / w).astype(np.int64), w0 - 1)
    return label[ys[:, None], xs[None, :]]


def preload(items: list[Item], size: tuple[int, int], progress=None):
    """All items at ``size`` in memory: uint8 images (N, 3, h, w) and uint8 labels (N, h, w)."""
    import torch

    w, h = size
    images = torch.empty((len(items), 3, h, w), dtype=torch.uint8)
    labels = torch.empty((len(items), h, w), dtype=torch.uint8)
    for i, it in enumerate(items):
        img, lab = it.load()
        images[i] = (resize_image(img, size) * 255.0).round_().to(torch.uint8)
        labels[i] = torch.from_numpy(resize_label(lab, size))
        if progress is not None:
            progress.update(1)
    return images, labels
