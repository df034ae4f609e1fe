"""Background processes (render, preview, translate) polled by a timer, so the UI never freezes.

A task is a subprocess of the headless script (``blender -b -P render.py`` in Blender,
``python render.py`` with the bpy module). Progress is read from the data set on disk
(finished sample folders), so it is exact and survives a cancel: the data set is
resumable and a rerun renders only what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bpy

from .core import module, render_script

POLL_S = 0.5
TASKS: dict[str, "Task"] = {}  # kind ("render", "preview", "translate") -> latest task


class Task:
    """One subprocess; ``poll()`` updates ``state``, ``done`` and ``message``."""

    def __init__(self, kind: str, cmd: list[str], out: str | None = None, expected: list[str] = (),
                 on_finish=None, cleanup: list[str] = ()):
        self.kind, self.cmd, self.out = kind, [str(c) for c in cmd], out
        self.expected = set(expected)
        self.total = len(self.expected)
        self.done = self._count()
        self.initial = self.done
        self.on_finish, self.cleanup = on_finish, list(cleanup)
        self.state, self.message = "new", ""
        self.proc = None
        self.log_path = ""
        self.started = time.monotonic()

    def launch(self) -> None:
        fd, self.log_path = tempfile.mkstemp(prefix=f"sim2real_{self.kind}_", suffix=".log")
        # the task ends with Blender, even a killed one (render.py and the translate task honour it)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", module("rendering.job").PARENT_ENV: str(os.getpid())}
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env)
        self.state, self.started = "running", time.monotonic()

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _count(self) -> int:
        if not self.out or not self.expected:
            return 0
        samples = Path(self.out) / "samples"
        meta = module("dataset.format").FILES["meta"]
        try:
            with os.scandir(samples) as it:
                return sum(1 for e in it if e.name in self.expected and os.path.isfile(os.path.join(e.path, meta)))
        except OSError:
            return 0

    def remove_log(self) -> None:
        if self.log_path:
            Path(self.log_path).unlink(missing_ok=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def poll(self) -> bool:
        """Update the state; True while the process runs."""
        if not self.running:
            return False
        self.done = self._count()
        rc = self.proc.poll()
        if rc is None:
            return True
        self.done = self._count()
        if rc == 0:
            self.state, self.message = "done", self._summary()
        else:
            self.state = "failed"
            lines = self.log_tail(60).splitlines()
            core = [ln for ln in lines if ln.startswith("error:")]  # the core's one-line messages
            other = [ln for ln in lines if ("Error" in ln or "Exception" in ln) and "Not freed memory" not in ln]
            err = core or other
            self.message = (err[-1] if err else f"exit status {rc}") + f" (log: {self.log_path})"
        self._finish()
        return False

    def _summary(self) -> str:
        if self.kind == "render":
            return f"{self.done}/{self.total} samples in {self.out}"
        return f"finished in {self.elapsed:.0f} s"

    def cancel(self) -> None:
        """Stop the process; finished samples stay (the data set resumes on the next run)."""
        if not self.running:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.done = self._count()
        self.state, self.message = "cancelled", f"cancelled at {self.done}/{self.total}; render again to resume"
        self._finish()

    def wait(self, timeout: float | None = None) -> str:
        """Block until the process ends (tests, scripts); returns the final state."""
        if self.proc is not None:
            self.proc.wait(timeout=timeout)
        self.poll()
        return self.state

    def _finish(self) -> None:
        try:
            if self.on_finish is not None:
                self.on_finish(self)
        except Exception as exc:  # shown in the panel, never lost
            self.state, self.message = "failed", module("errors").one_line(exc, with_type=True)
        finally:
            for p in self.cleanup:
                shutil.rmtree(p, ignore_errors=True)


def headless_command(args: list[str]) -> list[str]:
    """The command line running the headless render script with ``args``."""
    script = str(render_script())
    binary = bpy.app.binary_path
    if binary and Path(binary).name.lower().startswith("blender"):
        return [binary, "-b", "--factory-startup", "--python-exit-code", "1", "-P", script, "--", *args]
    return [sys.executable, script, *args]  # the bpy module: its Python runs the script


def start(task: Task) -> Task:
    """Launch ``task`` (one per kind at a time) and poll it from a timer."""
    if running(task.kind):
        raise RuntimeError(f"a {task.kind} is already running; wait or cancel it")
    try:
        task.launch()
    except OSError as exc:
        for p in task.cleanup:
            shutil.rmtree(p, ignore_errors=True)
        raise RuntimeError(f"cannot start {task.cmd[0]} ({exc.strerror})") from None
    old = TASKS.get(task.kind)
    if old is not None:  # logs are kept for the latest task of each kind only
        old.remove_log()
    TASKS[task.kind] = task
    if not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=POLL_S, persistent=True)
    return task


def running(kind: str) -> Task | None:
    t = TASKS.get(kind)
    return t if t is not None and t.running else None


def _redraw() -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _tick():
    alive = False
    for t in list(TASKS.values()):
        alive |= t.poll()
    _redraw()
    return POLL_S if alive else None


def stop_all() -> None:
    """Cancel running tasks and remove the timer (add-on disabled)."""
    for t in TASKS.values():
        t.cancel()
        t.remove_log()
    TASKS.clear()
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
