"""Presets, the sampler and bad input: one clear message, non-zero exit, nothing written."""

import numpy as np
import pytest

from sim2real.cli import main
from sim2real.config import load_config, preset_names
from sim2real.errors import ConfigError
from sim2real.scene.sampler import Sampler


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    return e.value.code, capsys.readouterr().err


def _preset(tmp_path, text):
    p = tmp_path / "p.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, message", [
    ("[camera]\nfovdeg = 70\n", "unknown field camera.fovdeg"),
    ("[camera]\nfov_deg = [60, 200]\n", "camera.fov_deg must be within 20..120, got 200"),
    ("[camera]\nfov_deg = [80, 60]\n", "min <= max"),
    ("[render]\nresolution = [0, 256]\n", "render.resolution must be positive"),
    ("[render]\nsamples = 'many'\n", "render.samples must be an integer"),
    ("[lights]\nenergy_w = 1\n", "unknown section [lights]"),
    ("[scene]\nmode = 'meshes'\n", "needs at least one [[meshes]]"),
    ("[scene]\nmode = 'meshes'\n[[meshes]]\npath = 'nope.stl'\nclass = 'liver'\n", "does not exist"),
    ("[scene]\nmode = 'meshes'\n[[meshes]]\npath = 'p.toml'\nclass = 'kidney'\n", "'kidney' is not a class"),
    ("[scene\n", "not valid TOML"),
])
def test_bad_presets_name_the_field(tmp_path, text, message):
    with pytest.raises(ConfigError) as e:
        load_config(_preset(tmp_path, text))
    assert message in str(e.value) and "p.toml" in str(e.value)


def test_unreadable_mesh_is_named_before_rendering(tmp_path):
    (tmp_path / "liver.stl").write_bytes(b"solid x\nthis is not an stl\n")
    p = _preset(tmp_path, "[scene]\nmode = 'meshes'\ntarget = ['liver']\n[[meshes]]\npath = 'liver.stl'\nclass = 'liver'\n")
    with pytest.raises(ConfigError, match=r"mesh .*liver.stl: .*STL"):
        Sampler(load_config(p))


def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    code, err = _cli(capsys, "render", "--out", str(tmp_path / "o"), "--count", "1",
                     "--set", "render.resolution=[0, 10]")
    assert code == 2 and err.startswith("error:") and "render.resolution must be positive" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()
    code, err = _cli(capsys, "render", "--preset", "nosuch", "--out", str(tmp_path / "o"), "--count", "1")
    assert code == 2 and "preset nosuch: no such file" in err and "default" in err


def test_unwritable_output_is_clear(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from sim2real.rendering.job import RenderJob, open_writer
    from sim2real.errors import DatasetError

    job = RenderJob("default", str(blocker / "out"), 1)
    with pytest.raises(DatasetError, match="not writable"):
        open_writer(job, job.config())


def test_missing_bpy_gives_install_hint(monkeypatch, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "bpy", None)  # makes `import bpy` raise ImportError
    code, err = _cli(capsys, "render", "--out", str(tmp_path / "o"), "--count", "1")
    assert code == 2 and "pip install -e '.[blender]'" in err and "Traceback" not in err


def test_shipped_presets_load():
    names = preset_names()
    assert "default" in names
    for n in names:
        if n.startswith("patient"):
            continue  # need ../shared/data; covered by test_patient_meshes
        load_config(n)


def test_sampler_is_deterministic_and_varies():
    cfg = load_config("default")
    s = Sampler(cfg)
    a, b, c = s(5, 3), s(5, 3), s(5, 4)
    assert np.array_equal(a.camera.camera_to_world, b.camera.camera_to_world)
    assert all(np.array_equal(x.vertices, y.vertices) for x, y in zip(a.objects, b.objects))
    assert not np.array_equal(a.camera.camera_to_world, c.camera.camera_to_world)
    liver_a = next(o for o in a.objects if o.name == "liver").vertices
    liver_c = next(o for o in c.objects if o.name == "liver").vertices
    assert not np.allclose(liver_a, liver_c)  # shapes vary per sample


def test_camera_is_inside_the_cavity_and_outside_organs():
    from sim2real.scene.geometry import inside_closed_mesh

    s = Sampler(load_config("default"))
    for i in range(5):
        d = s(0, i)
        eye = d.camera.camera_to_world[:3, 3]
        wall = next(o for o in d.objects if o.name == "abdominal_wall")
        assert inside_closed_mesh(eye, wall.vertices[wall.faces])
        for o in d.objects:
            if o.name in ("liver", "gallbladder", "fat"):
                assert not inside_closed_mesh(eye, o.vertices[o.faces])
        fov = d.camera.hfov_rad
        assert np.deg2rad(60) <= fov <= np.deg2rad(80)


def test_presets_show_prints_editable_toml(capsys):
    import tomllib

    from sim2real.cli import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["presets", "--show", "default"], standalone_mode=True)
    assert e.value.code == 0
    text = capsys.readouterr().out
    data = tomllib.loads(text)
    assert data["camera"]["fov_deg"] == [60.0, 80.0]
    assert load_config("default", None)["camera"] == data["camera"]  # the preset, completed


def test_look_at_puts_up_at_the_top_of_the_image():
    from sim2real.scene.geometry import intrinsics, look_at_opencv, project

    c2w = look_at_opencv([0, 0, 0], [0, 1, 0], up=(0, 0, 1))
    k = intrinsics(100, 80, np.deg2rad(70))
    above, right = project(k, c2w, np.array([[0, 1, 0.2], [0.2, 1, 0]]))
    assert above[1] < 40 and abs(above[0] - 50) < 1e-9   # world +z (up) -> top rows
    assert right[0] > 50 and abs(right[1] - 40) < 1e-9   # world +x -> image right (looking along +y)
    r = c2w[:3, :3]
    assert np.allclose(np.cross(r[:, 0], r[:, 1]), r[:, 2])  # right-handed OpenCV axes


def test_gallbladder_sits_under_the_right_lobe_on_the_image_left():
    s = Sampler(load_config("default", {"camera.direction_spread_deg": 0.0, "camera.roll_deg": 0.0}))
    d = s(0, 0)
    gb = next(o for o in d.objects if o.name == "gallbladder").vertices.mean(0)
    liver = next(o for o in d.objects if o.name == "liver").vertices
    assert gb[0] < liver[:, 0].mean()  # patient's right = -x
    assert gb[2] < liver[:, 2].max()  # below the dome
