"""The one place that knows about differences between Blender 4.2 LTS, 4.5 LTS and 5.0."""

from __future__ import annotations

from . import require_bpy


def version() -> tuple[int, int, int]:
    return tuple(require_bpy().app.version)


def set_input(node, names, value) -> None:
    """Set the first input socket of ``node`` that exists among ``names`` (renamed across versions)."""
    for name in names if isinstance(names, (list, tuple)) else [names]:
        sock = node.inputs.get(name)
        if sock is not None:
            sock.default_value = value
            return
    raise KeyError(f"{node.bl_idname} has none of the inputs {names}")


def socket(sockets, identifiers):
    """A socket by identifier (ShaderNodeMix has several same-named sockets per data type)."""
    for ident in identifiers:
        for s in sockets:
            if s.identifier == ident:
                return s
    raise KeyError(f"no socket among {identifiers}")


def set_smooth(mesh, smooth: bool) -> None:
    n = len(mesh.polygons)
    try:
        mesh.polygons.foreach_set("use_smooth", [smooth] * n)
    except (AttributeError, TypeError):  # newer versions: the sharp_face attribute
        attr = mesh.attributes.get("sharp_face") or mesh.attributes.new("sharp_face", "BOOLEAN", "FACE")
        attr.data.foreach_set("value", [not smooth] * n)


def enable_passes(view_layer, depth: bool, normal: bool, index: bool) -> None:
    view_layer.use_pass_z = depth
    view_layer.use_pass_normal = normal
    view_layer.use_pass_object_index = index


def set_denoise(scene, on: bool) -> None:
    scene.cycles.use_denoising = on
    if on:
        # albedo+normal guided OIDN with the cheap prefilter: ~0.3 s at 452x256 on 2 cores,
        # where the default "accurate" prefilter costs ~2 s for no visible gain here
        for attr, value in (("denoiser", "OPENIMAGEDENOISE"), ("denoising_prefilter", "FAST"),
                            ("denoising_quality", "BALANCED")):
            try:
                setattr(scene.cycles, attr, value)
            except (AttributeError, TypeError):  # 4.2 has no denoising_quality
                pass


def use_multilayer_exr(image_settings) -> None:
    """Multilayer EXR output: a file format before 5.0, a media type from 5.0 on."""
    if hasattr(image_settings, "media_type"):
        image_settings.media_type = "MULTI_LAYER_IMAGE"
    image_settings.file_format = "OPEN_EXR_MULTILAYER"


def writes_passes_to_exr() -> bool:
    """bpy 5.0.1 writes only the Combined pass to (multilayer) EXR files (seen headless)."""
    return version() < (5, 0, 0)


def use_nodes(idb) -> None:
    """Node-based materials/worlds: a switch before 5.0, always on (and deprecated) after."""
    if version() < (5, 0, 0):
        idb.use_nodes = True


GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


def enable_gpu() -> str:
    """Switch Cycles to the first GPU backend with a device; returns its name.

    Blender falls back to the CPU without a word when no GPU is enabled in its
    preferences; a data set asked to render on the GPU should not silently take 10x longer.
    """
    from ..errors import Sim2RealError

    bpy = require_bpy()
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in GPU_BACKENDS:
        try:
            prefs.compute_device_type = backend
        except TypeError:  # this build has no such backend
            continue
        prefs.refresh_devices()
        devices = [d for d in prefs.devices if d.type == backend]
        if devices:
            for d in prefs.devices:
                d.use = d.type == backend
            return backend
    raise Sim2RealError("render.device = 'GPU' but this Blender sees no GPU (OptiX, CUDA, HIP, oneAPI or Metal); "
                        "set render.device = 'CPU' or install a GPU build of Blender and its driver")
