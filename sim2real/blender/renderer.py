"""Render one SceneDescription into the arrays of a sample (image + exact labels)."""

from __future__ import annotations

import time
from pathlib import Path

from ..imaging import postprocess
from ..errors import Sim2RealError
from ..io.exr import read_exr
from ..scene.description import SceneDescription
from . import build, passes, require_bpy


class BlenderRenderer:
    """Owns the Blender scene of one process; ``render(desc, workdir)`` -> (arrays, timings)."""

    def __init__(self, factory_reset: bool = True, quiet: bool = True):
        bpy = require_bpy()
        if factory_reset:
            bpy.ops.wm.read_factory_settings(use_empty=True)
        self.scene = bpy.context.scene
        self.quiet = quiet

    def render(self, desc: SceneDescription, workdir: Path) -> tuple[dict, dict]:
        workdir = Path(workdir)
        t0 = time.perf_counter()
        self.prepare(desc)
        passes.configure(self.scene, desc.render, desc.camera.width, desc.camera.height)
        t1 = time.perf_counter()
        img_path, lab_path = workdir / "_image.exr", workdir / "_labels.exr"
        ctx = passes.quiet_render_output() if self.quiet else _Null()
        with ctx:
            passes.render_image(self.scene, desc.render, img_path)
            t2 = time.perf_counter()
            label_channels = passes.render_labels(self.scene, lab_path)
        t3 = time.perf_counter()
        try:
            arrays = postprocess.process(
                read_exr(img_path), label_channels, desc.camera.k, desc.camera.camera_to_world,
                {o.instance_id: o.class_id for o in desc.objects if o.labelled}, desc.render.fov_mask,
                desc.render.exposure, desc.effects)
        except KeyError as exc:
            raise Sim2RealError(
                f"Blender {passes.blender_version_string()} wrote no label pass {exc.args[0]!r}; sim2real "
                f"supports Blender/bpy 4.2, 4.5 LTS and 5.0: render with one of them (pip install 'bpy==4.5.*')"
                ) from None
        img_path.unlink()
        lab_path.unlink()
        t4 = time.perf_counter()
        return arrays, {"build_s": t1 - t0, "image_s": t2 - t1, "labels_s": t3 - t2, "postprocess_s": t4 - t3}

    def prepare(self, desc: SceneDescription) -> None:
        """Make the Blender scene show ``desc`` (a hook: the user-scene renderer poses, not builds)."""
        build.build(desc, self.scene)

    def close(self) -> None:
        build.clear()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
