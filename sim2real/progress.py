"""The progress bar with rate and ETA (stderr) that every long job uses.

On a terminal the bar is tqdm's when tqdm is installed (the CLI's environment: it fits
the line to the terminal's width). The small writer here draws it otherwise: in
Blender's bundled Python, which has no tqdm, and in log files, where it writes a whole
line every ``log_every`` seconds instead of carriage-return redraws.
"""

from __future__ import annotations

import sys
import time

try:
    from tqdm import tqdm as _tqdm
except ImportError:  # Blender's own Python
    _tqdm = None


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
    place on a terminal (with tqdm when importable) and every ``log_every`` seconds
    otherwise (log files, CI). ``total`` may be set later (a resumed job learns what is
    left).
    """

    def __init__(self, total: int, label: str = "", unit: str = "it", stream=None,
                 initial: int = 0, log_every: float = 10.0, enabled: bool = True):
        self._bar = None
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
        if enabled and self.tty and _tqdm is not None:
            self._bar = _tqdm(total=self.total, initial=initial, desc=label, unit=unit, file=self.stream,
                              dynamic_ncols=True, leave=True)

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, n: int) -> None:
        self._total = n
        if self._bar is not None:
            self._bar.total = n
            self._bar.refresh()

    def __enter__(self):
        self._draw(force=True)
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
            return False
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
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix_str(self._extra(), refresh=False)
            self._bar.update(n)
            return
        self._draw()

    def _extra(self) -> str:
        return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.postfix.items())

    def line(self) -> str:
        width = 24
        frac = self.done / self.total if self.total else 1.0
        fill = int(round(width * min(frac, 1.0)))
        extra = self._extra()
        return (f"{self.label} [{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                f"{self.rate:.2f} {self.unit}/s ETA {_fmt_time(self.eta)} "
                f"elapsed {_fmt_time(time.perf_counter() - self.start)} {extra}").rstrip()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled or self._bar is not None:
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
