"""Scenes from CT-derived patient meshes in ../shared/data (skipped without it)."""

import numpy as np
import pytest

from sim2real.config import load_config
from sim2real.scene.geometry import inside_closed_mesh
from sim2real.scene.meshio import load_mesh
from sim2real.scene.sampler import Sampler

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize("name", ["patient_a", "patient_b"])
def test_patient_scene_samples_a_free_camera(name, shared_data):
    cfg = load_config(name)
    s = Sampler(cfg)
    for i in range(3):
        d = s(0, i)
        eye = d.camera.camera_to_world[:3, 3]
        liver = next(o for o in d.objects if o.class_id == 1)
        assert 0.1 < np.ptp(liver.vertices, axis=0).max() < 0.4  # millimetres were scaled to metres
        assert not inside_closed_mesh(eye, liver.vertices[liver.faces])
        dist = np.linalg.norm(eye - d.target_point)
        assert 0.05 - 1e-9 <= dist <= 0.12 + 1e-9


def test_mesh_readers_agree_on_a_mesh(tmp_path, shared_data):
    v, f = load_mesh(shared_data / "meshes/patient-b/gallbladder.ply")
    obj = tmp_path / "g.obj"
    obj.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in v) + "".join(f"f {a+1} {b+1} {c+1}\n" for a, b, c in f))
    v2, f2 = load_mesh(obj)
    assert np.allclose(v2, v) and np.array_equal(f2, f)
    stl = tmp_path / "g.stl"
    lines = ["solid g"]
    for tri in v[f]:
        lines += ["facet normal 0 0 0", "outer loop", *[f"vertex {a} {b} {c}" for a, b, c in tri], "endloop", "endfacet"]
    stl.write_text("\n".join(lines + ["endsolid g"]))
    v3, f3 = load_mesh(stl)
    assert np.allclose(np.sort(v3, axis=0), np.sort(v, axis=0)) and len(f3) == len(f)


@pytest.mark.bpy
def test_patient_b_renders_extra_classes(tmp_path, shared_data):
    from sim2real.dataset.format import open_dataset, verify
    from sim2real.rendering.job import RenderJob, run

    run(RenderJob("patient_b", str(tmp_path / "b"), 2, seed=1,
                  overrides={"render.resolution": [96, 64], "render.samples": 1, "render.denoise": False}))
    assert verify(tmp_path / "b") == {}
    ds = open_dataset(tmp_path / "b")
    assert "artery" in ds.classes.names and ds.classes.id_of("artery") == 10
    seen = set()
    for s in ds:
        seen |= set(np.unique(s.segmentation()).tolist())
    assert 1 in seen  # liver visible
