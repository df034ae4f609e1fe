"""The progress bar: rate and ETA from a known clock, whole lines in log files, tqdm on a
terminal when installed and the small writer when not (Blender's Python)."""

import io
import types

import pytest

import sim2real.progress as progress_mod
from sim2real.progress import Progress


class _Clock:
    def __init__(self):
        self.now = 100.0

    def perf_counter(self):
        return self.now


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(progress_mod, "time", types.SimpleNamespace(perf_counter=c.perf_counter))
    return c


def test_log_file_gets_whole_lines_with_rate_and_eta(clock):
    log = io.StringIO()
    with Progress(10, "render", unit="samples", stream=log, log_every=10.0) as bar:
        clock.now += 2.0
        bar.update(4)  # 4 samples in 2 s: 2/s, 6 left -> 3 s; but only 2 s since the last line
        clock.now += 8.0
        bar.update(1, loss=0.123456)  # 5 in 10 s: 0.5/s, 5 left -> 10 s; 10 s since the last line
        clock.now += 1.0
        bar.update(1)  # too soon for another line; the last line comes on exit
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 3
    assert lines[0].startswith("render [") and " 0/10 " in lines[0] and "ETA --:--" in lines[0]
    assert " 5/10 0.50 samples/s ETA 00:10 elapsed 00:10 loss=0.1235" in lines[1]
    assert " 6/10 0.55 samples/s ETA 00:07 elapsed 00:11 loss=0.1235" in lines[2]


def test_resumed_job_counts_its_rate_from_where_it_started(clock):
    log = io.StringIO()
    with Progress(3600 * 3, "train", stream=log, initial=5000, log_every=0) as bar:
        clock.now += 10.0
        bar.update(20)  # 2 it/s over this run, not 5020 / 10 s
    last = log.getvalue().splitlines()[-1]
    assert "5020/10800 2.00 it/s ETA 48:10" in last  # (10800 - 5020) / 2 s = 2890 s


def test_total_set_later_shows_in_the_bar(clock):
    log = io.StringIO()
    with Progress(10, "render", stream=log, log_every=0) as bar:
        bar.total = 4  # a resumed render learns that 4 samples are left
        bar.update(4)
    assert " 4/4 " in log.getvalue().splitlines()[-1]


def test_disabled_bar_writes_nothing(clock):
    log = _Terminal()
    with Progress(5, "x", stream=log, enabled=False) as bar:
        bar.update(5)
    assert log.getvalue() == ""


def test_terminal_without_tqdm_redraws_in_place(clock, monkeypatch):
    monkeypatch.setattr(progress_mod, "_tqdm", None)  # as in Blender's Python
    term = _Terminal()
    with Progress(4, "verify", unit="samples", stream=term) as bar:
        for _ in range(4):
            clock.now += 1.0
            bar.update(1)
    out = term.getvalue()
    assert out.count("\r\033[K") == 6 and out.endswith("\n") and out.count("\n") == 1  # enter, 4, exit
    assert out.rstrip("\n").split("\r\033[K")[-1].startswith("verify [" + "#" * 24 + "] 4/4 1.00 samples/s ETA 00:00")


def test_terminal_with_tqdm_uses_tqdm(monkeypatch):
    pytest.importorskip("tqdm")
    term = _Terminal()
    with Progress(10, "train", unit="it", stream=term, initial=4) as bar:
        bar.total = 12
        bar.update(3, loss=0.25)
    out = term.getvalue()
    last = out.rstrip("\n").split("\r")[-1]
    assert last.startswith("train:  58%|") and "7/12 [" in last and "it/s, loss=0.25]" in last
    assert out.endswith("\n") and "\033[K" not in out  # tqdm drew it, not the fallback
