"""The Blender add-on: the zip and its manifest, install/enable from the zip, every operator
headless, the panel's draw code, and a clean disable.

The bpy module can install extensions (bpy.ops.extensions.package_install_files into a
temporary repository), so these tests install the very zip a user gets.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from sim2real import __version__
from sim2real.addon_cli import ADDON_DIR, build_zip
from sim2real.dataset.format import open_dataset, verify

REPO_MODULE = "sim2real_test_repo"
ADDON = f"bl_ext.{REPO_MODULE}.sim2real"
TINY = {"width": 64, "height": 48, "samples": 1, "denoise": False}


@pytest.fixture(scope="module")
def addon_zip(tmp_path_factory):
    return build_zip(tmp_path_factory.mktemp("dist"))


def test_zip_layout_and_manifest(addon_zip):
    with zipfile.ZipFile(addon_zip) as z:
        names = set(z.namelist())
        manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
        sources = {n: z.read(n).decode() for n in names if n.endswith(".py") and "/" not in n}
    assert addon_zip.name == f"sim2real-{__version__}.zip"
    for required in ("__init__.py", "blender_manifest.toml", "sim2real/render.py", "sim2real/blender/user_scene.py",
                     "sim2real/io/png.py", "scenes/default.toml"):
        assert required in names
    assert not any(n.startswith("sim2real/segment/") or "__pycache__" in n or n == "sim2real/cli.py" for n in names)
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "sim2real" and manifest["type"] == "add-on"
    assert manifest["version"] == __version__
    assert tuple(int(x) for x in manifest["blender_version_min"].split(".")) >= (4, 2, 0)
    assert all(lic.startswith("SPDX:") for lic in manifest["license"])
    assert len(manifest["tagline"]) <= 64 and manifest["tagline"][-1] not in ".!?"
    assert set(manifest["permissions"]) <= {"files", "network", "clipboard", "camera", "microphone"}
    assert "clipboard" in manifest["permissions"]  # the translate command is copied to the clipboard
    assert "LICENSE" in names and "MIT License" in z_license(addon_zip)
    assert manifest["license"] == ["SPDX:MIT"]  # pyproject's licence
    assert "website" not in manifest or "sim2real/sim2real" not in manifest["website"]  # no placeholder
    for name, src in sources.items():  # extensions: relative imports, no bl_info
        tree = ast.parse(src)
        assert not any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "bl_info" for t in n.targets)
                       for n in tree.body), name
        absolute = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0
                    and n.module and n.module.split(".")[0] == "sim2real"]
        assert not absolute, f"{name} imports sim2real absolutely"


def z_license(path) -> str:
    with zipfile.ZipFile(path) as z:
        return z.read("LICENSE").decode()


def test_addon_build_cli(tmp_path):
    from sim2real.cli import main

    main(["addon", "build", "--out", str(tmp_path / "d")])
    assert (tmp_path / "d" / f"sim2real-{__version__}.zip").is_file()
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exc:
        main(["addon", "build", "--out", str(tmp_path / "file" / "d")])
    assert exc.value.code == 2


@pytest.mark.bpy
def test_manifest_passes_blenders_validator(addon_zip):
    import bpy

    tool = Path(bpy.__file__).resolve().parents[2] / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not tool.is_file():
        pytest.skip(f"Blender's extension tool not found at {tool}")
    r = subprocess.run([sys.executable, str(tool), "validate", str(addon_zip)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# --- installed and enabled -------------------------------------------------------------


def _registered_names() -> set[str]:
    import bpy

    return {n for n in dir(bpy.types) if n.startswith("SIM2REAL_")}


def _operator_exists(idname: str) -> bool:
    """``hasattr(bpy.ops.group, name)`` is true for any name; the RNA type exists only when registered."""
    import bpy

    group, _, op = idname.partition(".")
    try:
        getattr(getattr(bpy.ops, group), op).get_rna_type()
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def installed(addon_zip, tmp_path_factory):
    """The extension installed from the zip into a temporary repository, and enabled."""
    import bpy  # first: it puts Blender's script modules (addon_utils) on the path
    import addon_utils

    bpy.ops.wm.read_factory_settings(use_empty=True)
    handlers_before = {k: len(getattr(bpy.app.handlers, k)) for k in dir(bpy.app.handlers)
                       if isinstance(getattr(bpy.app.handlers, k), list)}
    repo_dir = tmp_path_factory.mktemp("extensions")
    repos = bpy.context.preferences.extensions.repos
    repo = repos.new(name="sim2real tests", module=REPO_MODULE, custom_directory=str(repo_dir), source="USER")
    assert bpy.ops.extensions.package_install_files(filepath=str(addon_zip), repo=REPO_MODULE,
                                                    enable_on_install=True) == {"FINISHED"}
    assert addon_utils.check(ADDON)[1], "the extension is not enabled after installing"
    yield SimpleNamespace(module=importlib.import_module(ADDON), handlers_before=handlers_before,
                          dir=repo_dir / "sim2real")
    if addon_utils.check(ADDON)[1]:
        addon_utils.disable(ADDON)
    repos.remove(repo)


@pytest.fixture
def addon(installed):
    """Every test starts from the same state, whatever ran before it: the extension enabled,
    a new empty file (default settings, no objects, no scene properties), no background task."""
    import addon_utils
    import bpy

    tasks = _sub(installed, "tasks")
    tasks.stop_all()
    if not addon_utils.check(ADDON)[1]:  # a test disabled it
        addon_utils.enable(ADDON, default_set=True)
    assert bpy.ops.wm.read_homefile(use_empty=True) == {"FINISHED"}  # keeps the preferences: still enabled
    assert addon_utils.check(ADDON)[1] and not bpy.data.objects
    yield installed
    tasks = _sub(installed, "tasks")
    tasks.stop_all()  # nothing a test started goes on running into the next


def _sub(addon, name):
    return importlib.import_module(f"{ADDON}.{name}")


def _settings(tmp_path, **kw):
    import bpy

    s = bpy.context.scene.sim2real_settings
    for k, v in {**TINY, "out_dir": str(tmp_path / "set"), "count": 2, "seed": 3, "index": 0, **kw}.items():
        setattr(s, k, v)
    return s


@pytest.mark.bpy
def test_enable_registers_everything_and_twice_is_fine(addon):
    import addon_utils
    import bpy

    names = _registered_names()
    assert {"SIM2REAL_OT_build_scene", "SIM2REAL_OT_render_dataset", "SIM2REAL_PT_main"} <= names
    assert hasattr(bpy.types.Scene, "sim2real_settings")
    assert _operator_exists("sim2real.build_scene") and not _operator_exists("sim2real.no_such_operator")
    addon_utils.enable(ADDON, default_set=True)  # enabling again
    addon.module.register()  # and registering again directly
    assert _registered_names() == names


@pytest.mark.bpy
def test_build_randomize_and_show_labels(addon, tmp_path):
    import bpy

    s = _settings(tmp_path, preset="default")
    assert bpy.ops.sim2real.build_scene() == {"FINISHED"}
    built = {o.name for o in bpy.data.collections["Sim2Real"].objects}
    assert {"liver", "gallbladder", "abdominal_wall", "scope"} <= built
    liver = bpy.data.objects["liver"]
    assert liver["sim2real_class_id"] == 1 and liver.pass_index > 0
    cam_before = bpy.context.scene.camera.matrix_world.copy()
    assert bpy.ops.sim2real.randomize() == {"FINISHED"}
    assert s.index == 1 and bpy.context.scene.camera.matrix_world != cam_before
    # show labels: class colours and solid/object shading, then everything restored
    liver = bpy.data.objects["liver"]
    liver.color = (0.1, 0.2, 0.3, 1.0)
    spaces = [sp for scr in bpy.data.screens for a in scr.areas if a.type == "VIEW_3D" for sp in a.spaces
              if sp.type == "VIEW_3D"]
    before = [(sp.shading.type, sp.shading.color_type) for sp in spaces]
    assert bpy.ops.sim2real.show_labels() == {"FINISHED"}
    assert bpy.context.scene.get("sim2real_labels_shown")
    r, g, b = (170, 40, 40)  # liver, sRGB
    assert liver.color[0] == pytest.approx(((r / 255 + 0.055) / 1.055) ** 2.4, abs=1e-4)
    assert all((sp.shading.type, sp.shading.color_type) == ("SOLID", "OBJECT") for sp in spaces)
    assert bpy.ops.sim2real.show_labels() == {"FINISHED"}
    assert tuple(liver.color) == pytest.approx((0.1, 0.2, 0.3, 1.0))
    assert [(sp.shading.type, sp.shading.color_type) for sp in spaces] == before
    assert "_sim2real_prev_color" not in liver and "sim2real_labels_shown" not in bpy.context.scene


@pytest.mark.bpy
def test_render_dataset_progress_cancel_resume(addon, tmp_path):
    import bpy

    tasks = _sub(addon, "tasks")
    s = _settings(tmp_path, preset="default", count=2)
    assert bpy.ops.sim2real.render_dataset() == {"FINISHED"}
    task = tasks.TASKS["render"]
    assert task.total == 2
    with pytest.raises(RuntimeError, match="already running"):
        bpy.ops.sim2real.render_dataset()
    assert task.wait(timeout=300) == "done", task.log_tail()
    assert task.done == 2 and verify(s.out_dir) == {}
    # a longer run, cancelled: finished samples stay, the rest is rendered by the next run
    s.count = 4
    bpy.ops.sim2real.render_dataset()
    task = tasks.TASKS["render"]
    assert task.initial == 2
    assert bpy.ops.sim2real.cancel(kind="render") == {"FINISHED"}
    assert task.state == "cancelled" and task.done >= 2
    bpy.ops.sim2real.render_dataset()
    task = tasks.TASKS["render"]
    assert task.wait(timeout=300) == "done", task.log_tail()
    assert len(open_dataset(s.out_dir)) == 4 and verify(s.out_dir) == {}
    assert "skipped" in task.log_tail()


@pytest.mark.bpy
def test_render_preview_shows_image_and_labels(addon, tmp_path):
    import bpy

    tasks = _sub(addon, "tasks")
    _settings(tmp_path, preset="default", index=2)
    assert bpy.ops.sim2real.render_preview() == {"FINISHED"}
    task = tasks.TASKS["preview"]
    assert task.wait(timeout=300) == "done", task.message + task.log_tail()
    img = bpy.data.images["sim2real_preview"]
    w, h = img.size
    assert w > 64 * 3 and h == 48  # image | labels | depth | normals
    assert "preview of sample 000002" in task.message
    assert not Path(task.out).exists()  # the temporary render is removed, the image is packed
    assert img.packed_file is not None


@pytest.mark.bpy
def test_label_own_objects_and_render_this_scene(addon, tmp_path):
    import bpy

    tasks = _sub(addon, "tasks")
    assert not bpy.data.objects  # an empty file (the fixture's)
    s = _settings(tmp_path, preset="default", source="SCENE", count=2)
    s.camera_mode = "fixed"
    assert bpy.context.scene["sim2real_camera"] == "fixed"
    with pytest.raises(RuntimeError, match="no labelled objects"):
        bpy.ops.sim2real.render_dataset()
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.05)
    organ = bpy.context.object
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.5)
    cavity = bpy.context.object
    bpy.ops.object.camera_add(location=(0, -0.25, 0), rotation=(1.5708, 0, 0))
    bpy.context.scene.camera = bpy.context.object
    bpy.ops.object.light_add(type="POINT", location=(0, -0.2, 0.05))
    with bpy.context.temp_override(selected_objects=[], active_object=None):
        with pytest.raises(RuntimeError, match="select the objects"):
            bpy.ops.sim2real.assign_class(class_name="liver")
    with bpy.context.temp_override(selected_objects=[organ], active_object=organ):
        assert bpy.ops.sim2real.assign_class(class_name="gallbladder") == {"FINISHED"}
    s.label_class = "abdominal_wall"
    with bpy.context.temp_override(selected_objects=[cavity], active_object=cavity):
        assert bpy.ops.sim2real.assign_class() == {"FINISHED"}
    assert organ["sim2real_class"] == "gallbladder" and organ["sim2real_class_id"] == 2
    assert bpy.context.scene["sim2real_preset"] == "default"
    assert bpy.ops.sim2real.render_dataset() == {"FINISHED"}
    task = tasks.TASKS["render"]
    assert task.wait(timeout=300) == "done", task.log_tail()
    assert verify(s.out_dir) == {}
    meta = open_dataset(s.out_dir)[0].meta
    assert meta["source"]["kind"] == "user_scene"
    assert meta["class_pixel_counts"]["gallbladder"] > 0
    assert {i["class"] for i in meta["instances"]} == {"gallbladder", "abdominal_wall"}
    assert "sim2real_camera" not in bpy.data.objects  # the open file is untouched
    with bpy.context.temp_override(selected_objects=[organ], active_object=organ):
        assert bpy.ops.sim2real.clear_class() == {"FINISHED"}
    assert "sim2real_class" not in organ


@pytest.mark.bpy
def test_errors_reach_the_ui(addon, tmp_path):
    import bpy

    s = _settings(tmp_path, preset="default", source="PRESET")
    s.out_dir = ""
    with pytest.raises(RuntimeError, match="choose an output folder"):
        bpy.ops.sim2real.render_dataset()
    (tmp_path / "plain_file").write_text("")
    s.out_dir = str(tmp_path / "plain_file" / "set")
    with pytest.raises(RuntimeError, match="not writable"):
        bpy.ops.sim2real.render_dataset()
    s.preset = "FILE"
    s.preset_file = str(tmp_path / "missing.toml")
    with pytest.raises(RuntimeError, match="missing.toml: no such file"):
        bpy.ops.sim2real.build_scene()
    (tmp_path / "bad.toml").write_text("[camera]\nfov_deg = 200\n")
    s.preset_file = str(tmp_path / "bad.toml")
    with pytest.raises(RuntimeError, match="camera.fov_deg must be within"):
        bpy.ops.sim2real.build_scene()
    with pytest.raises(RuntimeError, match="no render is running"):
        bpy.ops.sim2real.cancel(kind="render")


@pytest.mark.bpy
def test_background_failure_is_shown_with_the_cores_message(addon, tmp_path):
    import bpy

    tasks = _sub(addon, "tasks")
    (tmp_path / "far.toml").write_text("[camera]\ndistance_m = [1.9, 2.0]\nmax_tries = 1\n")
    _settings(tmp_path, preset="FILE", preset_file=str(tmp_path / "far.toml"), source="PRESET", count=1)
    assert bpy.ops.sim2real.render_dataset() == {"FINISHED"}
    task = tasks.TASKS["render"]
    assert task.wait(timeout=300) == "failed"
    assert "no free camera pose found" in task.message


@pytest.mark.bpy
def test_background_tasks_end_with_blender(addon, tmp_path):
    """Tasks are told Blender's pid; the headless script and the translate task die with it."""
    import time
    from pathlib import Path

    tasks = _sub(addon, "tasks")
    task = tasks.Task("probe", [sys.executable, "-c", "import os; print('parent', os.environ['SIM2REAL_PARENT_PID'])"])
    task.launch()
    assert task.wait(timeout=60) == "done", task.log_tail()
    assert f"parent {os.getpid()}" in task.log_tail()
    # what the tasks do with it: a stand-in for Blender starts the translate task's preamble, is killed,
    # and the task (which would otherwise sleep for a minute) is gone within seconds
    ops = _sub(addon, "operators")
    preamble = (ops._TRANSLATE.split("from sim2real.translate")[0]
                + "print('watching', flush=True); import time; time.sleep(60)")
    blender = subprocess.Popen([sys.executable, "-c",
                                "import os, subprocess, sys, time; "
                                "p = subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]], "
                                "env={**os.environ, 'SIM2REAL_PARENT_PID': str(os.getpid())}); "
                                "print(p.pid, flush=True); time.sleep(60)", preamble, str(Path(__file__).resolve().parents[1])],
                               stdout=subprocess.PIPE, text=True)
    child = int(blender.stdout.readline())
    try:
        assert blender.stdout.readline().strip() == "watching"  # its parent watch is set: no fixed sleep
        blender.kill()
        blender.wait()
        deadline = time.monotonic() + 60  # a deadline, done as soon as it is gone
        while time.monotonic() < deadline and _pid_alive(child):
            time.sleep(0.1)
        assert not _pid_alive(child)
    finally:
        blender.kill()
        if _pid_alive(child):
            os.kill(child, 9)


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.bpy
def test_translate_without_checkpoint_shows_the_command(addon, tmp_path, fake_render_dataset):
    import bpy

    s = _settings(tmp_path, out_dir=str(fake_render_dataset), checkpoint="", variants=3)
    assert bpy.ops.sim2real.translate() == {"FINISHED"}
    data = str(fake_render_dataset)
    assert s.translate_command == (f"sim2real translate --checkpoint RUN/checkpoint.pt --data {data} "
                                   f"--out {data}_translated -k 3")
    s.checkpoint = str(tmp_path / "nope.pt")
    with pytest.raises(RuntimeError, match="nope.pt: no such file"):
        bpy.ops.sim2real.translate()
    s.checkpoint, s.out_dir = "", str(tmp_path / "empty")
    with pytest.raises(RuntimeError, match="not a sim2real data set"):
        bpy.ops.sim2real.translate()


@pytest.mark.bpy
@pytest.mark.slow  # trains a tiny translator for one step, then translates in a subprocess (~30 s)
def test_translate_with_a_checkpoint_runs_in_the_background(addon, tmp_path, fake_render_dataset, fake_real_folder):
    import bpy

    pytest.importorskip("torch")
    from sim2real.translate.config import load_config
    from sim2real.translate.data import RealFrames, SimImages
    from sim2real.translate.trainer import Trainer

    tiny = {"model": {"gen_dim": 8, "mlp_dim": 16, "n_res": 1, "dis_dim": 8, "dis_n_layer": 2, "dis_num_scales": 2},
            "data": {"load_size": 48, "crop": [48, 64]},
            "train": {"log_every": 1, "sample_every": 100, "checkpoint_every": 100}}
    cfg = load_config(None, tiny)
    images = fake_real_folder / "images" if (fake_real_folder / "images").is_dir() else fake_real_folder
    Trainer(cfg, SimImages(fake_render_dataset), RealFrames([images], cfg.data), tmp_path / "run", "cpu").fit(1)
    tasks = _sub(addon, "tasks")
    _settings(tmp_path, out_dir=str(fake_render_dataset), checkpoint=str(tmp_path / "run" / "checkpoint.pt"),
              variants=2)
    assert bpy.ops.sim2real.translate() == {"FINISHED"}
    task = tasks.TASKS["translate"]
    assert task.wait(timeout=300) == "done", task.log_tail()
    out = f"{fake_render_dataset}_translated"
    assert verify(out) == {} and open_dataset(out).kind == "translation"


class _Layout:
    """A stand-in for bpy.types.UILayout that checks what draw() asks for."""

    def __init__(self, calls):
        self.calls = calls

    def _child(self, *a, **k):
        return _Layout(self.calls)

    row = column = box = split = _child

    def prop(self, data, name, **kw):
        assert name in data.bl_rna.properties, f"no property {name!r} on {data}"
        self.calls.append(("prop", name))

    def operator(self, idname, **kw):
        assert _operator_exists(idname), idname
        self.calls.append(("operator", idname))
        return SimpleNamespace()

    def label(self, text="", **kw):
        assert isinstance(text, str)
        self.calls.append(("label", text))

    def progress(self, factor=0.0, type="BAR", text=""):
        assert 0.0 <= factor <= 1.0
        self.calls.append(("progress", text))

    def template_icon(self, icon_value=0, scale=1.0):
        self.calls.append(("icon", icon_value))


@pytest.mark.bpy
def test_panel_draw_code_runs(addon, tmp_path):
    import bpy

    panel, tasks = _sub(addon, "panel"), _sub(addon, "tasks")
    s = _settings(tmp_path, preset="default")
    for cls in panel.CLASSES:
        assert cls.bl_category == "Sim2Real" and cls.bl_space_type == "VIEW_3D" and cls.bl_region_type == "UI"
    states = [dict(source="PRESET"), dict(source="SCENE", preset="FILE", translate_command="sim2real translate …")]
    fake_task = SimpleNamespace(running=True, done=1, total=4, fraction=0.25, elapsed=3.0, state="running",
                                message="", cancel=lambda: None, remove_log=lambda: None)
    for i, state in enumerate(states):
        for k, v in state.items():
            setattr(s, k, v)
        if i == 1:
            previous = tasks.TASKS.get("render")
            tasks.TASKS["render"] = fake_task
            bpy.context.scene["sim2real_built"] = "a test build"
            bpy.context.scene["sim2real_labels_shown"] = True
        calls = []
        for cls in panel.CLASSES:
            cls.draw(SimpleNamespace(layout=_Layout(calls)), bpy.context)
        assert ("operator", "sim2real.render_dataset") in calls
    assert ("progress", "1/4 samples") in calls and ("operator", "sim2real.cancel") in calls
    assert ("label", "Built: a test build") in calls and ("operator", "sim2real.copy_command") in calls
    if previous is None:
        del tasks.TASKS["render"]
    else:
        tasks.TASKS["render"] = previous
    del bpy.context.scene["sim2real_labels_shown"]
    s.preset = "default"


@pytest.mark.bpy
def test_panel_offers_only_presets_the_install_can_build(addon):
    import bpy

    props, config = _sub(addon, "props"), _sub(addon, "core").module("config")
    offered = [item[0] for item in props._preset_items(bpy.context.scene.sim2real_settings, bpy.context)]
    assert "default" in offered and offered[-1] == props.FILE
    assert "patient_a" not in offered and "patient_b" not in offered  # their meshes are not in the zip
    for name in offered[:-1]:
        config.load_config(name)  # builds: raises otherwise


@pytest.mark.bpy
def test_disable_leaves_nothing_registered(addon):
    import addon_utils
    import bpy

    tasks = _sub(addon, "tasks")
    addon_utils.disable(ADDON)
    assert not addon_utils.check(ADDON)[1]
    assert _registered_names() == set()
    assert not hasattr(bpy.types.Scene, "sim2real_settings")
    assert not bpy.app.timers.is_registered(tasks._tick)
    assert not _operator_exists("sim2real.build_scene")
    after = {k: len(getattr(bpy.app.handlers, k)) for k in addon.handlers_before}
    assert after == addon.handlers_before
    # and it comes back
    addon_utils.enable(ADDON, default_set=True)
    assert "SIM2REAL_OT_build_scene" in _registered_names()
    addon_utils.disable(ADDON)
    assert _registered_names() == set()


@pytest.mark.bpy
def test_bundled_core_runs_without_pip_packages(addon_zip, tmp_path):
    """Blender's own Python has numpy but no imageio/OpenEXR/click/torch/tqdm: the bundled core
    must render and write a sound data set with those blocked."""
    root = tmp_path / "ext"
    with zipfile.ZipFile(addon_zip) as z:
        z.extractall(root)
    blocker = tmp_path / "block" / "sitecustomize.py"
    blocker.parent.mkdir()
    blocker.write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('imageio', 'OpenEXR', 'Imath', 'click', 'torch', 'PIL', 'tqdm',\n"
        "                                   'trimesh'):\n"
        "            raise ImportError(f'{name} is not in Blender\\'s Python')\n"
        "sys.meta_path.insert(0, _Block())\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    out = tmp_path / "set"
    r = subprocess.run([sys.executable, str(root / "sim2real" / "render.py"), "--out", str(out), "--count", "1",
                        "--set", "render.resolution=[64, 48]", "--set", "render.samples=1",
                        "--set", "render.denoise=false"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert verify(out) == {}
    assert str(root) in open_dataset(out).info["config"].get("preset_path", "")


@pytest.mark.bpy
def test_register_directly_from_a_checkout(addon, monkeypatch):
    """Where extensions cannot be installed, the package registers directly (core: the installed sim2real)."""
    import addon_utils
    import bpy

    addon_utils.disable(ADDON)  # no installed extension registering the same names
    assert _registered_names() == set()

    monkeypatch.syspath_prepend(str(ADDON_DIR.parent))
    mod = importlib.import_module("blender_addon")
    assert importlib.import_module("blender_addon.core").package.__name__ == "sim2real"
    mod.register()
    mod.register()
    try:
        assert "SIM2REAL_OT_build_scene" in _registered_names() and hasattr(bpy.types.Scene, "sim2real_settings")
    finally:
        mod.unregister()
    assert _registered_names() == set() and not hasattr(bpy.types.Scene, "sim2real_settings")
