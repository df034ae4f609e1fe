"""Bad input and faults: one line naming the thing and the fix, exit 2, nothing lost."""

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim2real.cli import main
from sim2real.errors import ConfigError, DatasetError, one_line

REPO = Path(__file__).resolve().parent.parent
TINY_SETS = ["--set", "render.resolution=[64, 40]", "--set", "render.samples=2", "--set", "render.denoise=false"]


def _cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main(list(args))
    return e.value.code, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_one_line_keeps_the_first_meaningful_line():
    exc = OSError("\n  Could not find a backend to open `x.jpg`.\nBased on the extension:\n  pyav: pip install av")
    assert one_line(exc) == "Could not find a backend to open `x.jpg`."
    assert one_line(exc, with_type=True) == "OSError: Could not find a backend to open `x.jpg`."
    assert one_line(EOFError()) == "EOFError"
    assert len(one_line(ValueError("x" * 1000))) == 300


def test_bpy_missing_on_another_python_says_which_python(monkeypatch, tmp_path, capsys):
    import sim2real.blender as blender

    monkeypatch.setitem(sys.modules, "bpy", None)  # `import bpy` raises ImportError
    monkeypatch.setattr(blender, "_python", lambda: (3, 12))
    code, err = _cli(capsys, "render", "--out", str(tmp_path / "o"), "--count", "1")
    line = _one_error_line(err)
    assert code == 2 and "Python 3.11 only, this is Python 3.12" in line and "--blender" in line


def test_count_zero_is_one_line_and_writes_nothing(tmp_path, capsys):
    code, err = _cli(capsys, "render", "--out", str(tmp_path / "o"), "--count", "0")
    assert code == 2 and _one_error_line(err) == "error: --count 0: nothing to render; give --count 1 or more"
    assert not (tmp_path / "o").exists()
    r = subprocess.run([sys.executable, str(REPO / "sim2real" / "render.py"), "--out", str(tmp_path / "o"),
                        "--count", "0"], capture_output=True, text=True, env=_env())
    assert r.returncode == 2 and r.stderr.strip() == "error: --count 0: nothing to render; give --count 1 or more"


def test_set_errors_blame_the_set_value_not_the_preset(tmp_path, capsys):
    code, err = _cli(capsys, "render", "--out", str(tmp_path / "o"), "--count", "1", "--set", "render.samples=-3")
    line = _one_error_line(err)
    assert code == 2 and line.startswith("error: --set render.samples=-3: render.samples must be within")
    assert "default.toml" not in line and not (tmp_path / "o").exists()


def _mesh_preset(tmp_path, mesh_name="liver.stl"):
    p = tmp_path / "p.toml"
    p.write_text(f"[scene]\nmode = 'meshes'\ntarget = ['liver']\n[[meshes]]\npath = '{mesh_name}'\nclass = 'liver'\n")
    return p


def test_mesh_path_that_is_a_folder_says_so(tmp_path):
    from sim2real.config import load_config
    from sim2real.scene.meshio import load_mesh

    (tmp_path / "liver.stl").mkdir()
    with pytest.raises(ConfigError, match=r"meshes\[0\]\.path .*liver.stl is a folder, not a mesh file"):
        load_config(_mesh_preset(tmp_path))
    with pytest.raises(ConfigError, match=r"liver.stl: is a folder, not a mesh file"):
        load_mesh(tmp_path / "liver.stl")


@pytest.mark.parametrize("data", [
    os.urandom(3000),  # random bytes: not ASCII, header count nonsense
    b"\0" * 80 + struct.pack("<I", 5) + b"\xff" * 100,  # a binary STL cut short
    b"ply\nformat binary_little_endian 1.0\n\xff\xfe\nend_header\n",  # PLY with a garbled header
])
def test_binary_garbage_mesh_is_one_clear_line(tmp_path, data):
    from sim2real.scene.meshio import load_mesh

    path = tmp_path / ("liver.ply" if data.startswith(b"ply") else "liver.stl")
    path.write_bytes(data)
    with pytest.raises(ConfigError) as e:
        load_mesh(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "re-export" in msg and "Decode" not in msg


def test_a_folder_with_no_finished_sample_takes_new_settings(tmp_path):
    """A run that failed before its first sample (a bad mesh) must not lock its --out."""
    from sim2real.classes import DEFAULT_TABLE
    from sim2real.dataset.format import DatasetWriter, open_dataset

    info = {"kind": "render", "classes": DEFAULT_TABLE.to_json()}
    DatasetWriter(tmp_path / "d", {**info, "seed": 1}, fingerprint="aaaa")
    w = DatasetWriter(tmp_path / "d", {**info, "seed": 2}, fingerprint="bbbb")  # no sample yet: accepted
    assert open_dataset(tmp_path / "d").info["fingerprint"] == "bbbb"
    with w.write_sample("000000") as d:
        (d / "meta.json").write_text("{}")
    with pytest.raises(DatasetError, match="different settings"):  # now it holds a sample: refused
        DatasetWriter(tmp_path / "d", {**info, "seed": 1}, fingerprint="aaaa")


def test_a_job_whose_folder_was_taken_over_commits_nothing(tmp_path):
    from sim2real.classes import DEFAULT_TABLE
    from sim2real.dataset.format import DatasetWriter

    info = {"kind": "render", "classes": DEFAULT_TABLE.to_json()}
    first = DatasetWriter(tmp_path / "d", info, fingerprint="aaaa")
    DatasetWriter(tmp_path / "d", info, fingerprint="bbbb")  # another job, other settings, before any sample
    with pytest.raises(DatasetError, match="taken over by a job with different settings"):
        with first.write_sample("000000") as d:
            (d / "meta.json").write_text("{}")
    assert not [p for p in (tmp_path / "d" / "samples").iterdir()]  # nothing committed, nothing left


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


@pytest.mark.bpy
def test_rerun_after_a_failed_render_accepts_corrected_settings(tmp_path):
    (tmp_path / "liver.stl").write_bytes(os.urandom(3000))
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "sim2real.cli", "render", "--out", str(out), "--count", "1", "--no-preview",
           *TINY_SETS]
    r = subprocess.run(cmd + ["--preset", str(_mesh_preset(tmp_path)), "--workers", "2"], capture_output=True,
                       text=True, env=_env(), cwd=tmp_path)
    assert r.returncode == 2 and "liver.stl: not a readable STL file" in _one_error_line(r.stderr)
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=tmp_path)  # the default scene
    assert r.returncode == 0, r.stderr
    assert (out / "samples" / "000000" / "meta.json").is_file()


def _workers(pid: int) -> list[int]:
    """The render workers of ``pid``: its children started by multiprocessing's spawn (not
    its resource tracker)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                cmdline = (d / "cmdline").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, ...
            if int(fields[1]) == pid and b"spawn_main" in cmdline:
                out.append(int(d.name))
    return sorted(out)


def _wait_until(condition, seconds: float, what: str, proc=None):
    """Poll ``condition`` until it holds (returns its value); fail after ``seconds`` or when
    ``proc`` ends first."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert proc is None or proc.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {seconds:.0f} s"
        time.sleep(0.1)


def _both_workers_rendered(out: Path) -> bool:
    """Workers take every 2nd index (``todo[k::2]``): samples 0 and 1 come one from each, so
    both are past their start-up (signals set, parent watched) and rendering."""
    return all((out / "samples" / sid / "meta.json").is_file() for sid in ("000000", "000001"))


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.bpy
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_workers_die_with_a_killed_parent(tmp_path):
    out = tmp_path / "o"
    parent = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "render", "--out", str(out), "--count", "200",
                               "--workers", "2", "--no-preview", *TINY_SETS], env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until(lambda: _both_workers_rendered(out), 240, "sample from each worker", parent)
        workers = _workers(parent.pid)
        assert len(workers) == 2, workers
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    # a deadline, not a sleep: done as soon as both are gone (the kernel kills them at once)
    try:
        _wait_until(lambda: not any(_running(p) for p in workers), 60, "end of the workers (they outlive their parent)")
    finally:  # a failed run leaves no orphan rendering on
        for p in workers:
            if _running(p):
                os.kill(p, signal.SIGKILL)


def _default_sigint():
    """In the child: Ctrl-C does what it does in a terminal. A suite started in the background
    (``cmd &``, nohup, some CI runners) ignores SIGINT, children inherit that, and Python then
    installs no KeyboardInterrupt handler: the render would go on to the end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.bpy
@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT to a process group")
def test_ctrl_c_during_a_worker_render_is_one_line_not_tracebacks(tmp_path):
    """Ctrl-C in a terminal signals the whole process group: the parent says one line and
    exits 130; its workers stay quiet (they printed a KeyboardInterrupt traceback each)."""
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "sim2real.cli", "render", "--out", str(out), "--count", "200",
                             "--workers", "2", "--no-preview", *TINY_SETS], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_default_sigint)
    try:
        # both workers past their start-up: one still importing would not yet ignore SIGINT
        _wait_until(lambda: _both_workers_rendered(out), 240, "sample from each worker", proc)
        assert len(_workers(proc.pid)) == 2
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] in ("interrupted", "aborted"), err


def test_missing_meshes_lists_mesh_files_a_preset_cannot_reach(tmp_path):
    from sim2real.config import missing_meshes

    preset = _mesh_preset(tmp_path)
    assert missing_meshes(preset) == [tmp_path / "liver.stl"]
    (tmp_path / "liver.stl").write_bytes(b"solid x\nendsolid x\n")
    assert missing_meshes(preset) == [] and missing_meshes("default") == []


@pytest.mark.skipif(os.name != "posix", reason="the pid watch is the POSIX fallback")
def test_headless_script_ends_when_its_parent_is_gone(tmp_path):
    """`sim2real render --blender` passes its pid to the Blender processes; one whose parent
    is already gone ends at once instead of rendering unseen."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    r = subprocess.run([sys.executable, str(REPO / "sim2real" / "render.py"), "--out", str(tmp_path / "o"),
                        "--count", "1"], env={**_env(), "SIM2REAL_PARENT_PID": str(gone.pid)},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and not (tmp_path / "o").exists()
