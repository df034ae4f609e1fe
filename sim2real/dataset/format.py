"""The data-set format: writer, reader, verify and a torch ``Dataset``.

Layout (documented in docs/dataset-format.md)::

    DIR/dataset.json            format, version, kind, class table, conventions, config
    DIR/samples/<id>/image.png          sRGB uint8 (H, W, 3)
    DIR/samples/<id>/segmentation.png   uint8 class ids
    DIR/samples/<id>/instances.png      uint16 instance ids (0 = none)
    DIR/samples/<id>/depth.exr          float32 channel "Z": planar z-depth in metres
    DIR/samples/<id>/normals.exr        float32 channels "X","Y","Z": unit normals, camera frame (OpenCV)
    DIR/samples/<id>/meta.json          per-sample metadata

A sample directory appears only when complete (written in a temporary directory that is
renamed into place), so "the directory exists" means "the sample is done".
"""

from __future__ import annotations

import functools
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .. import __version__
from ..classes import ClassTable
from ..errors import DatasetError, one_line
from ..io.exr import EXRError, read_exr
from ..io import atomic_dir, clean_partials, read_json, read_png, write_json_atomic

FORMAT_NAME = "sim2real-dataset"
FORMAT_VERSION = 1
FILES = {
    "image": "image.png",
    "segmentation": "segmentation.png",
    "instances": "instances.png",
    "depth": "depth.exr",
    "normals": "normals.exr",
    "meta": "meta.json",
}
LABEL_KEYS = ("segmentation", "instances", "depth", "normals")

CONVENTIONS = {
    "camera_frame": "OpenCV: x right, y down, z forward (into the scene)",
    "pose": "camera_to_world: 4x4 matrix mapping camera-frame points (OpenCV axes) to world points",
    "world_frame": "Blender world: metres, z up",
    "intrinsics": "K: 3x3 in pixels; pixel (u, v) has its centre at (u + 0.5, v + 0.5)",
    "depth": "planar z-depth in metres (distance along the optical axis), float32; +inf where no surface is seen "
             "(outside the circular field of view, or no geometry)",
    "normals": "unit vectors in the camera frame (OpenCV axes), pointing towards the camera side of the surface; "
               "(0, 0, 0) where no surface is seen",
    "segmentation": "uint8 class ids from the class table; never antialiased; 0 outside the field of view",
    "instances": "uint16 object ids, 0 = none; listed per sample in meta.json 'instances'",
    "image": "sRGB 8-bit, view transform applied (what a person sees)",
}


def sample_id(index: int) -> str:
    return f"{index:06d}"


class DatasetWriter:
    """Creates or reopens a data set folder and commits samples atomically."""

    def __init__(self, root: str | os.PathLike, info: dict, fingerprint: str | None = None):
        self.root = Path(root)
        self.samples_dir = self.root / "samples"
        try:
            self.samples_dir.mkdir(parents=True, exist_ok=True)
            # a probe of its own: workers and shards open one folder at the same time, and a
            # shared name let one process delete another's probe ("not writable: no such file")
            fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise DatasetError(f"output folder {self.root} is not writable ({exc.strerror}); "
                               f"choose another --out") from None
        info_path = self.root / "dataset.json"
        info = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                "package_version": __version__, "conventions": CONVENTIONS, **info}
        if fingerprint is not None:
            info["fingerprint"] = fingerprint
        if info_path.exists():
            try:
                old = read_json(info_path)
            except ValueError:
                raise DatasetError(f"{info_path} is not valid JSON; delete it or use another --out") from None
            if old.get("format") != FORMAT_NAME:
                raise DatasetError(f"{self.root} holds something that is not a sim2real data set; use another --out")
            if fingerprint is not None and old.get("fingerprint") != fingerprint:
                if self._finished_samples():
                    raise DatasetError(
                        f"{self.root} already holds a data set made with different settings (preset, seed, "
                        f"resolution or checkpoint); resume with the same options or use another --out")
                # nothing was finished under the old settings (e.g. a run that failed on a bad
                # mesh): the folder takes the new ones
                write_json_atomic(info_path, info)
        else:
            write_json_atomic(info_path, info)
        self.info = info
        self.fingerprint = fingerprint
        clean_partials(self.samples_dir)

    def _finished_samples(self) -> bool:
        with os.scandir(self.samples_dir) as it:
            return any(e.is_dir() and not e.name.startswith(".") for e in it)

    def _check_settings_unchanged(self) -> None:
        """Before a sample is committed: the folder still belongs to this job's settings."""
        if self.fingerprint is None:
            return
        try:
            current = read_json(self.root / "dataset.json").get("fingerprint")
        except (OSError, ValueError, AttributeError):
            current = None
        if current != self.fingerprint:
            raise DatasetError(f"{self.root} was taken over by a job with different settings while this one ran; "
                               f"rerun with those settings or use another --out")

    def has(self, sid: str) -> bool:
        return (self.samples_dir / sid / FILES["meta"]).is_file()

    def sample_dir(self, sid: str) -> Path:
        return self.samples_dir / sid

    @contextmanager
    def write_sample(self, sid: str):
        """Yield a temporary folder to fill; it becomes ``samples/<sid>`` on success."""
        with atomic_dir(self.samples_dir / sid) as tmp:
            yield tmp
            self._check_settings_unchanged()

    def write_variant(self, source: "Sample", vid: str, image: np.ndarray, record: dict) -> dict[str, int]:
        """Commit one translated variant of ``source`` atomically: its image, hard links (or
        copies) of the source's label files, and its meta with ``record`` under
        ``translation``; returns {"links": n, "copies": n}."""
        from ..io import link_or_copy, write_png

        counts = {"links": 0, "copies": 0}
        with self.write_sample(vid) as d:
            write_png(d / FILES["image"], image)
            for f in sorted(source.dir.iterdir()):
                if f.name in (FILES["image"], FILES["meta"]) or not f.is_file():
                    continue
                counts["links" if link_or_copy(f, d / f.name) == "link" else "copies"] += 1
            write_json_atomic(d / FILES["meta"], {**dict(source.meta), "id": vid, "translation": record})
        return counts


def write_render_files(d: Path, arrays: dict, meta: dict) -> None:
    """The files of one rendered sample (image, labels, meta) into folder ``d`` (a
    :meth:`DatasetWriter.write_sample` folder)."""
    from ..io.exr import write_exr
    from ..io import write_png

    # Fast settings: zlib level 1 PNGs (what Blender writes) and uncompressed EXRs (ZIP saves
    # ~10 % on float labels for 5x the time; uncompressed also reads in Blender's Python).
    for key in ("image", "segmentation", "instances"):
        write_png(d / FILES[key], arrays[key], compress_level=1)
    write_exr(d / FILES["depth"], {"Z": arrays["depth"]}, compress=False)
    n = arrays["normals"]
    write_exr(d / FILES["normals"], {"X": n[..., 0], "Y": n[..., 1], "Z": n[..., 2]}, compress=False)
    write_json_atomic(d / FILES["meta"], meta)


class Sample:
    """One sample of a data set; arrays are read on demand."""

    def __init__(self, dataset: "Dataset", sid: str):
        self.dataset = dataset
        self.id = sid
        self.dir = dataset.root / "samples" / sid
        self._meta = None

    def path(self, key: str) -> Path:
        return self.dir / FILES[key]

    @property
    def meta(self) -> dict:
        if self._meta is None:
            self._meta = read_json(self.path("meta"))
        return self._meta

    def image(self) -> np.ndarray:
        return read_png(self.path("image"))

    def segmentation(self) -> np.ndarray:
        return read_png(self.path("segmentation"))

    def instances(self) -> np.ndarray:
        return read_png(self.path("instances")).astype(np.uint16)

    def depth(self) -> np.ndarray:
        return read_exr(self.path("depth"))["Z"]

    def normals(self) -> np.ndarray:
        ch = read_exr(self.path("normals"))
        return np.stack([ch["X"], ch["Y"], ch["Z"]], axis=-1)

    def load(self, keys=("image", "segmentation", "instances", "depth", "normals")) -> dict:
        """The requested arrays plus ``meta`` as a dict."""
        out = {k: getattr(self, k)() for k in keys}
        out["meta"] = self.meta
        return out

    def __repr__(self):
        return f"Sample({self.id!r} in {self.dataset.root})"


class Dataset:
    """A data set on disk: ``for s in open_dataset(p): s.image(), s.segmentation(), s.meta``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        info_path = self.root / "dataset.json"
        if not info_path.is_file():
            raise DatasetError(f"{self.root} is not a sim2real data set (no dataset.json); "
                               f"point at a folder written by 'sim2real render' or 'sim2real translate'")
        try:
            self.info = read_json(info_path)
        except ValueError as exc:
            raise DatasetError(f"{info_path} is not valid JSON ({one_line(exc)})") from None
        if self.info.get("format") != FORMAT_NAME:
            raise DatasetError(f"{info_path}: 'format' is {self.info.get('format')!r}, expected {FORMAT_NAME!r}")
        if int(self.info.get("format_version", -1)) > FORMAT_VERSION:
            raise DatasetError(f"{info_path}: format_version {self.info['format_version']} is newer than this "
                               f"sim2real understands ({FORMAT_VERSION}); upgrade sim2real")
        try:
            self.classes = ClassTable.from_json(self.info["classes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{info_path}: invalid 'classes' table ({one_line(exc)})") from None
        samples_dir = self.root / "samples"
        self._ids = sorted(p.name for p in samples_dir.iterdir()
                           if p.is_dir() and not p.name.startswith(".")) if samples_dir.is_dir() else []

    @property
    def kind(self) -> str:
        return self.info.get("kind", "render")

    def ids(self) -> list[str]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, i: int) -> Sample:
        return Sample(self, self._ids[i])

    def sample(self, sid: str) -> Sample:
        if sid not in self._ids:
            raise KeyError(f"no sample {sid!r} in {self.root}")
        return Sample(self, sid)

    def __iter__(self):
        return (Sample(self, sid) for sid in self._ids)


def open_dataset(root: str | os.PathLike) -> Dataset:
    return Dataset(root)


# --- translated data sets: K variants of every render, labels carried over ------------


def variant_id(sid: str, j: int) -> str:
    """The id of variant ``j`` of render ``sid`` in a translated data set."""
    return f"{sid}_style_{j:02d}"


def open_renders(data: str | os.PathLike, verb: str = "translate") -> Dataset:
    """The render data set to ``verb`` into variants (a clear error for anything else)."""
    src = open_dataset(data)
    if src.kind == "translation":
        raise DatasetError(f"{data} is already a translation data set; {verb} the renders it came from")
    if len(src) == 0:
        raise DatasetError(f"{data} holds no samples; render some with 'sim2real render' first")
    return src


def open_translation(out: str | os.PathLike, src: Dataset, settings: dict, fingerprint_settings: dict) -> DatasetWriter:
    """The writer of a translated data set of ``src``, ``settings`` recorded; a folder made
    with other ``fingerprint_settings`` (or from another source) is refused."""
    import hashlib
    import json

    source = {"path": str(src.root.resolve()), "kind": src.kind, "fingerprint": src.info.get("fingerprint")}
    fp_src = {"root": source["path"], "fingerprint": source["fingerprint"]}
    fingerprint = hashlib.sha256(json.dumps({**fingerprint_settings, "source": fp_src},
                                            sort_keys=True).encode()).hexdigest()[:16]
    info = {"kind": "translation", "classes": src.info["classes"], "source": source,
            "translation": settings, "config": src.info.get("config")}
    return DatasetWriter(out, info, fingerprint=fingerprint)


def missing_variants(src: Dataset, writer: DatasetWriter, k: int, shard=(0, 1)) -> tuple[list[tuple[int, str]], int]:
    """The (index, id) renders of shard ``(i, n)`` with a variant still missing, and how many are done."""
    i, n = shard
    todo, done = [], 0
    for index, sid in enumerate(src.ids()):
        if index % n != i:
            continue
        if all(writer.has(variant_id(sid, j)) for j in range(k)):
            done += k
        else:
            todo.append((index, sid))
    return todo, done


def class_pixel_counts(seg: np.ndarray, table: ClassTable) -> dict[str, int]:
    """Visible pixels per class name (every class of the table, zeros included)."""
    counts = np.bincount(seg.ravel(), minlength=256)
    return {c.name: int(counts[c.id]) for c in table}


# What every sample's meta.json holds (docs/dataset-format.md); verify checks their shape.
REQUIRED_META = ("index", "seed", "resolution", "camera", "instances", "class_pixel_counts")


def _matrix(value, n: int) -> bool:
    return (isinstance(value, list) and len(value) == n
            and all(isinstance(r, list) and len(r) == n and all(_is_number(x) for x in r) for r in value))


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def meta_problems(meta) -> list[str]:
    """What is missing or malformed in a sample's meta.json record."""
    if not isinstance(meta, dict):
        return [f"meta.json must hold a JSON object, holds a {type(meta).__name__}"]
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        return [f"meta.json lacks {', '.join(missing)}"]
    problems = []
    res = meta["resolution"]
    if not (isinstance(res, list) and len(res) == 2 and all(isinstance(x, int) and x > 0 for x in res)):
        problems.append(f"meta.json resolution must be [width, height], is {res!r}")
    cam = meta["camera"]
    if not (isinstance(cam, dict) and _matrix(cam.get("K"), 3) and _matrix(cam.get("camera_to_world"), 4)):
        problems.append("meta.json camera must hold K (3x3) and camera_to_world (4x4)")
    inst = meta["instances"]
    if not (isinstance(inst, list) and all(isinstance(i, dict) and isinstance(i.get("id"), int) for i in inst)):
        problems.append("meta.json instances must be a list of records with an integer id")
    counts = meta["class_pixel_counts"]
    if not (isinstance(counts, dict) and all(isinstance(v, int) for v in counts.values())):
        problems.append("meta.json class_pixel_counts must map class names to pixel counts")
    return problems


def verify_sample(sample: Sample, table: ClassTable) -> list[str]:
    """Problems found in one sample (empty list when it is sound)."""
    try:
        return _verify_sample(sample, table)
    except Exception as exc:  # a damaged sample is reported, never stops the check of the others
        return [f"cannot be checked ({one_line(exc, with_type=True)})"]


def _verify_sample(sample: Sample, table: ClassTable) -> list[str]:
    problems = []
    for key, name in FILES.items():
        if not sample.path(key).is_file():
            problems.append(f"missing {name}")
    if problems:
        return problems
    try:
        meta = sample.meta
    except ValueError as exc:
        return [f"meta.json is not valid JSON ({one_line(exc)})"]
    problems = meta_problems(meta)
    if problems:
        return problems
    try:
        img = sample.image()
        seg = read_png(sample.path("segmentation"))
        inst = read_png(sample.path("instances"))
        depth = sample.depth()
        normals = sample.normals()
    except (OSError, ValueError, EXRError, KeyError) as exc:
        return [f"unreadable file ({one_line(exc)})"]
    h, w = seg.shape[:2] if seg.ndim >= 2 else (0, 0)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        problems.append(f"image.png should be uint8 (H, W, 3), is {img.dtype} {img.shape}")
    if seg.ndim != 2 or seg.dtype != np.uint8:
        problems.append(f"segmentation.png should be uint8 (H, W), is {seg.dtype} {seg.shape}")
    if inst.ndim != 2 or inst.dtype != np.uint16:
        problems.append(f"instances.png should be uint16 (H, W), is {inst.dtype} {inst.shape}")
    for name, arr in (("image", img), ("instances", inst), ("depth", depth), ("normals", normals)):
        if arr.shape[:2] != (h, w):
            problems.append(f"{name} is {arr.shape[1]}x{arr.shape[0]}, segmentation is {w}x{h}")
    if problems:
        return problems
    res = meta["resolution"]
    if list(res) != [w, h]:
        problems.append(f"meta.json resolution {res} but images are {w}x{h}")
    bad_ids = sorted(set(np.unique(seg).tolist()) - set(table.ids))
    if bad_ids:
        problems.append(f"segmentation has ids not in the class table: {bad_ids}")
    surface = seg > 0
    if not np.all(np.isfinite(depth[surface]) & (depth[surface] > 0)):
        n = int(np.sum(~(np.isfinite(depth[surface]) & (depth[surface] > 0))))
        problems.append(f"depth is not finite and positive on {n} labelled pixels")
    norm = np.linalg.norm(normals[surface], axis=-1)
    if norm.size and not np.all(np.abs(norm - 1) < 1e-3):
        problems.append(f"normals are not unit length on {int(np.sum(np.abs(norm - 1) >= 1e-3))} labelled pixels")
    if meta["class_pixel_counts"] != class_pixel_counts(seg, table):
        problems.append("meta.json class_pixel_counts disagree with segmentation.png")
    inst_ids = {int(i["id"]) for i in meta["instances"]}
    extra = sorted(set(np.unique(inst).tolist()) - inst_ids - {0})
    if extra:
        problems.append(f"instances.png has ids not listed in meta.json: {extra}")
    return problems


def verify(root: str | os.PathLike, progress=None) -> dict[str, list[str]]:
    """``{sample_id: [problem, ...]}`` for every bad sample (``""`` for data-set-level ones)."""
    try:
        ds = open_dataset(root)
    except DatasetError as exc:
        return {"": [one_line(exc)]}
    bad: dict[str, list[str]] = {}
    if len(ds) == 0:
        bad[""] = ["no samples"]
    for s in ds:
        problems = verify_sample(s, ds.classes)
        if problems:
            bad[s.id] = problems
        if progress is not None:
            progress.update(1)
    return bad


def torch_dataset(root: str | os.PathLike, keys=("image", "segmentation"), transform=None):
    """A ``torch.utils.data.Dataset`` over a data set: items are dicts of tensors.

    ``keys`` from image, segmentation, instances, depth, normals, K, tips. ``image`` becomes
    float32 (3, H, W) in [0, 1]; segmentation and instances int64 (H, W), depth float32
    (H, W), normals float32 (3, H, W); ``K`` float32 (3, 3) from meta.json; ``tips`` float32
    (N, 3), one row per instrument: its tip's (u, v) in K's pixel convention and a COCO
    visibility (2 seen, 1 hidden, 0 out of the frame; see
    :func:`sim2real.dataset.tips.instrument_tips`); N varies, so batch it with a
    ``collate_fn`` of your own. Every item also holds its sample ``id``.

    ``transform`` is one callable applied to the whole item (one dict in, one dict out), so
    image and labels move together; :mod:`sim2real.dataset.transforms` has crop, flip and
    resize. The data set pickles (a module-level class holding the folder's path), so a
    ``DataLoader`` with workers runs under the spawn start method too (macOS, Windows); a
    ``transform`` must pickle as well (the ones in transforms do).
    """
    return _torch_sample_dataset_class()(root, keys, transform)


def __getattr__(name: str):
    # PEP 562: the class subclasses torch's Dataset, so it is made on first use (this module
    # also runs in Blender's Python, which has no torch); pickle finds it here by name.
    if name == "TorchSampleDataset":
        return _torch_sample_dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _torch_sample_dataset_class():
    import torch
    from torch.utils.data import Dataset as _TorchDataset

    class TorchSampleDataset(_TorchDataset):
        """The samples of a data set as dicts of tensors (see :func:`torch_dataset`)."""

        def __init__(self, root, keys=("image", "segmentation"), transform=None):
            self.root, self.keys, self.transform = Path(root), tuple(keys), transform
            self._ds = open_dataset(self.root)

        def __len__(self):
            return len(self._ds)

        def __getitem__(self, i):
            sample = self._ds[i]
            arrays = sample.load([k for k in self.keys if k not in ("K", "tips")])
            out = {"id": sample.id}
            if "K" in self.keys:
                out["K"] = torch.tensor(sample.meta["camera"]["K"], dtype=torch.float32)
            if "tips" in self.keys:
                from .tips import instrument_tips

                tips = instrument_tips(sample.meta, sample.instances(), sample.depth())
                out["tips"] = torch.tensor([[*t["uv"], t["visibility"]] for t in tips],
                                           dtype=torch.float32).reshape(-1, 3)
            for k, v in arrays.items():
                if k == "meta":
                    continue
                if k == "image":
                    out[k] = torch.from_numpy(v).permute(2, 0, 1).float() / 255.0
                elif k == "normals":
                    out[k] = torch.from_numpy(v).permute(2, 0, 1).contiguous()
                elif k in ("segmentation", "instances"):
                    out[k] = torch.from_numpy(v.astype(np.int64))
                else:
                    out[k] = torch.from_numpy(v)
            return self.transform(out) if self.transform else out

    TorchSampleDataset.__module__, TorchSampleDataset.__qualname__ = __name__, "TorchSampleDataset"
    return TorchSampleDataset
