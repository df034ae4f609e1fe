"""A small progress bar with rate and ETA (stderr), shared by every long job."""

from __future__ import annotations

import sys
import time


def _fmt_time(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """``with Progress(total, "render") as bar: bar.update(1, loss=0.3)``.

    Prints ``label [####....] done/total rate/s ETA h:mm:ss key=value``; redraws in
    place on a terminal and every ``log_every`` seconds otherwise (log files, CI).
    """

    def __init__(self, total: int, label: str = "", unit: str = "it", stream=None,
                 initial: int = 0, log_every: float = 10.0, enabled: bool = True):
        self.total = max(int(total), 0)
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.done = initial
        self.initial = initial
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_every = log_every
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self.postfix: dict[str, object] = {}

    def __enter__(self):
        self._draw(force=True)
        return self

    def __exit__(self, *exc):
        self._draw(force=True)
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
        return False

    @property
    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        n = self.done - self.initial
        return n / elapsed if elapsed > 0 and n > 0 else 0.0

    @property
    def eta(self) -> float:
        r = self.rate
        return (self.total - self.done) / r if r > 0 else float("inf")

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        self.postfix.update(postfix)
        self._draw()

    def line(self) -> str:
        width = 24
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(width * min(frac, 1.0)))
        extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.postfix.items())
        return (f"{self.label} [{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                f"{self.rate:.2f} {self.unit}/s ETA {_fmt_time(self.eta)} "
                f"elapsed {_fmt_time(time.perf_counter() - self.start)} {extra}").rstrip()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and not self.tty and now - self._last_draw < self.log_every:
            return
        if not force and self.tty and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        if self.tty:
            self.stream.write("\r\033[K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
