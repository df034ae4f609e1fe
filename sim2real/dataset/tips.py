"""Where each instrument's tip lies in a sample's image, and whether it is seen there.

A function of ``meta.json`` (the tip in world coordinates, the camera's K and pose, the
field of view) and, for occlusion, the sample's ``instances`` and ``depth``; read by the
COCO export (keypoints) and by ``torch_dataset`` (the ``tips`` key).
"""

from __future__ import annotations

import math

import numpy as np

TIP_TOLERANCE_M = 1e-3  # a surface less than this in front of the tip does not hide it


def instrument_tips(meta: dict, instances: np.ndarray | None = None, depth: np.ndarray | None = None) -> list[dict]:
    """Each instrument's tip in the image: ``{"index", "instance_ids", "uv", "visibility"}``.

    ``uv`` is the projection through K (the data-set convention: pixel (c, r) spans
    [c, c+1) x [r, r+1)); ``visibility`` is 2 (seen: the pixel shows the instrument itself or
    nothing nearer than the tip), 1 (in the frame, hidden by another surface) or 0 (behind the
    camera, outside the image or outside the circular field of view; uv is NaN behind the
    camera). Without ``instances`` and ``depth`` every tip in the frame counts as seen.
    """
    cam = meta["camera"]
    k = np.asarray(cam["K"], float)
    w2c = np.linalg.inv(np.asarray(cam["camera_to_world"], float))
    width, height = meta["resolution"]
    fov = meta.get("fov_mask")
    tips = []
    for ins in meta.get("instruments") or []:
        ids = (int(ins["shaft_instance_id"]), int(ins["tip_instance_id"]))
        pc = w2c[:3, :3] @ np.asarray(ins["tip_world"], float) + w2c[:3, 3]
        u = v = math.nan
        vis = 0
        if pc[2] > 0:
            uvw = k @ pc
            u, v = float(uvw[0] / uvw[2]), float(uvw[1] / uvw[2])
            inside = 0 <= u < width and 0 <= v < height
            if inside and fov:
                inside = (u - fov["cx"]) ** 2 + (v - fov["cy"]) ** 2 <= fov["radius"] ** 2
            if inside:
                vis = 2
                if instances is not None and depth is not None:
                    r, c = int(v), int(u)
                    own = int(instances[r, c]) in ids
                    vis = 2 if own or not depth[r, c] < pc[2] - TIP_TOLERANCE_M else 1
        tips.append({"index": ins.get("index"), "instance_ids": ids, "uv": (u, v), "visibility": vis})
    return tips
