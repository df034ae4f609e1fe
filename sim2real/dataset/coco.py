"""COCO instance annotations of a data set (renders or translated variants).

Layout written under ``OUT``::

    OUT/images/<sample id>.png            the sample's image.png (a hard link where possible)
    OUT/annotations/instances_train.json  COCO: images, annotations, categories
    OUT/annotations/instances_val.json

* One annotation per (instance id, class id) found in ``instances.png`` and
  ``segmentation.png``: an RLE mask (pycocotools), its area and bbox, ``iscrowd`` 0, and
  ``instance_id`` (the value in instances.png). Background (class 0) has no category.
* Category ids are the class table's ids (``sim2real classes``).
* Keypoints: one, ``tip``, per annotation. An instrument's shaft and tip annotations carry
  its tip (``meta.json`` ``instruments[].tip_world`` projected through ``K``), in COCO's
  pixel-index convention (``x = u - 0.5`` where ``u`` is the K projection; detectron2 adds
  the 0.5 back). ``v`` = 2 visible, 1 in the frame but hidden by another surface, 0 outside
  the frame or field of view (then x = y = 0). Other annotations carry ``[0, 0, 0]``.
* Every image record keeps ``K`` and ``camera_to_world`` (the data-set conventions), its
  ``sample_id`` and the ``render_id`` it shows (a translated variant shows its source render).
* Splits are by render: all variants of one render land in the same split.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..classes import INSTRUMENT_CLASSES
from ..errors import DatasetError, Sim2RealError, one_line
from ..io import atomic_path, link_or_copy, write_bytes_atomic
from .format import open_dataset
from .tips import instrument_tips



def require_pycocotools():
    try:
        from pycocotools import mask
    except ImportError:
        raise Sim2RealError("COCO export needs pycocotools; install it with  pip install 'sim2real[coco]'  "
                            "(or  pip install pycocotools)") from None
    return mask


def render_id(meta: dict, sid: str) -> str:
    """The render a sample shows: itself, or the source of a translated variant."""
    return (meta.get("translation") or {}).get("source_id", sid)


def split_renders(render_ids, val_fraction: float, seed: int = 0) -> set[str]:
    """The renders of the validation split: ``round(val_fraction * n)`` of them, those with the
    smallest hash of (seed, id), so a render keeps its split as the data set grows (except at
    the margin) and the choice does not depend on the order samples are listed in."""
    ids = sorted(set(render_ids))
    n_val = round(val_fraction * len(ids))
    if 0 < val_fraction and n_val == 0 and len(ids) > 1:
        n_val = 1
    if val_fraction < 1 and n_val == len(ids) and len(ids) > 1:
        n_val = len(ids) - 1
    key = lambda r: hashlib.sha256(f"{seed}:{r}".encode()).hexdigest()  # noqa: E731
    return set(sorted(ids, key=key)[:n_val])


def categories(table) -> list[dict]:
    """COCO categories from the class table (ids unchanged; background left out)."""
    out = []
    for c in table:
        if c.id == 0:
            continue
        cat = {"id": c.id, "name": c.name, "color": list(c.color),
               "supercategory": "instrument" if c.name in INSTRUMENT_CLASSES else
               "anatomy" if c.id < 8 else "extra"}
        cat.update({"keypoints": ["tip"], "skeleton": []} if c.name in INSTRUMENT_CLASSES else {})
        out.append(cat)
    return out


def sample_annotations(sample, mask_api) -> tuple[dict, list[dict]]:
    """The image record and annotations (ids still unset) of one sample."""
    import imageio.v3 as iio

    meta = sample.meta
    seg = sample.segmentation()
    inst = sample.instances()
    height, width = seg.shape
    img_shape = iio.improps(sample.path("image")).shape
    if tuple(img_shape[:2]) != (height, width) or inst.shape != seg.shape:
        raise DatasetError(f"sample {sample.id}: image {img_shape[1]}x{img_shape[0]}, instances "
                           f"{inst.shape[1]}x{inst.shape[0]} and segmentation {width}x{height} differ; "
                           f"run 'sim2real verify {sample.dataset.root}'")
    cam = meta["camera"]
    image = {"file_name": f"{sample.id}.png", "width": width, "height": height, "sample_id": sample.id,
             "render_id": render_id(meta, sample.id), "K": cam["K"], "camera_to_world": cam["camera_to_world"]}
    tips = {}
    if meta.get("instruments"):
        for t in instrument_tips(meta, inst, sample.depth()):
            for iid in t["instance_ids"]:
                tips[iid] = t
    names = {int(r["id"]): r.get("name") for r in meta.get("instances", [])}
    key = inst.astype(np.int64) * 256 + seg
    labelled = (inst > 0) & (seg > 0)
    anns = []
    for k in np.unique(key[labelled]).tolist():
        iid, cid = divmod(k, 256)
        m = key == k
        rle = mask_api.encode(np.asfortranarray(m.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        ann = {"image_id": None, "category_id": cid, "segmentation": rle, "area": int(m.sum()),
               "bbox": [float(x) for x in mask_api.toBbox(rle)], "iscrowd": 0, "instance_id": iid,
               "name": names.get(iid), "keypoints": [0, 0, 0], "num_keypoints": 0}
        t = tips.get(iid)
        if t is not None:
            ann["instrument"] = t["index"]
            if t["visibility"]:
                u, v = t["uv"]
                ann["keypoints"] = [u - 0.5, v - 0.5, t["visibility"]]
                ann["num_keypoints"] = 1
        anns.append(ann)
    return image, anns


def _place_image(src: Path, dst: Path) -> str:
    """Hard-link (or copy, keeping the mtime) ``src`` to ``dst`` atomically; 'kept' when already there."""
    if dst.exists():
        a, b = src.stat(), dst.stat()
        if os.path.samefile(src, dst) or (a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns):
            return "kept"
    with atomic_path(dst) as tmp:
        os.unlink(tmp)
        return "linked" if link_or_copy(src, tmp) == "link" else "copied"


def _check_out(out: Path, data: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file; choose a folder")
    if out.resolve() == data.resolve() or data.resolve() in out.resolve().parents:
        raise DatasetError(f"--out {out} is inside the data set; choose a folder outside it")
    if out.is_dir() and any(out.iterdir()) and not (out / "annotations").is_dir():
        raise DatasetError(f"--out {out} holds other files; choose an empty folder or a previous COCO export")


def check_export(data, out, val_fraction: float):
    """The data set to export, once the arguments are known to be sound (else a one-line error)."""
    if not (isinstance(val_fraction, (int, float)) and 0 <= val_fraction <= 1):
        raise Sim2RealError(f"--val-fraction must be between 0 and 1, is {val_fraction}")
    ds = open_dataset(data)
    if len(ds) == 0:
        raise DatasetError(f"{data} holds no samples; render some with 'sim2real render' first")
    _check_out(Path(out), ds.root)
    return ds


def export_coco(data, out, val_fraction: float = 0.2, seed: int = 0, progress=None) -> dict:
    """Write the COCO export of data set ``data`` into ``out``; returns a summary.

    A rerun rewrites the annotation files and leaves images already in place; images of
    samples no longer in the data set are removed.
    """
    mask_api = require_pycocotools()
    ds = check_export(data, out, val_fraction)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, anns, counts = [], [], {"kept": 0, "linked": 0, "copied": 0}
    for image_id, sample in enumerate(ds, start=1):
        try:
            image, sample_anns = sample_annotations(sample, mask_api)
        except DatasetError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise DatasetError(f"sample {sample.id} cannot be exported ({one_line(exc, with_type=True)}); "
                               f"run 'sim2real verify {ds.root}'") from None
        image["id"] = image_id
        for a in sample_anns:
            a["image_id"] = image_id
        images.append(image)
        anns.extend(sample_anns)
        counts[_place_image(sample.path("image"), out / "images" / image["file_name"])] += 1
        if progress is not None:
            progress.update(1)
    for i, a in enumerate(anns, start=1):
        a["id"] = i
    wanted = {im["file_name"] for im in images}
    for p in (out / "images").glob("*.png"):
        if p.name not in wanted:
            p.unlink()
    val = split_renders([im["render_id"] for im in images], val_fraction, seed)
    cats = categories(ds.classes)
    info = {"description": f"sim2real {ds.kind} data set {ds.root.resolve()}", "version": "1",
            "kind": ds.kind, "val_fraction": val_fraction, "seed": seed,
            "keypoint_convention": "COCO pixel index: x = u - 0.5, y = v - 0.5 of the projection through K"}
    summary = {"images": len(images), "annotations": len(anns), **counts,
               "keypoints_visible": sum(a["keypoints"][2] == 2 for a in anns)}
    for split in ("train", "val"):
        ims = [im for im in images if (im["render_id"] in val) == (split == "val")]
        ids = {im["id"] for im in ims}
        doc = {"info": {**info, "split": split}, "licenses": [], "images": ims,
               "annotations": [a for a in anns if a["image_id"] in ids], "categories": cats}
        write_bytes_atomic(out / "annotations" / f"instances_{split}.json",
                           json.dumps(doc, separators=(",", ":")).encode())
        summary[split] = len(ims)
    return summary
