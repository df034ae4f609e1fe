"""The user docs say only what is true: every `sim2real ...` command line in README.md and
docs/*.md names a real (sub)command and only options its `--help` lists (and every call of
the headless script sim2real/render.py only options its parser has), every relative
link and image resolves to a file (and every #anchor to a heading), and the README names
the test command CI runs.

Commands are checked in-process (click's CliRunner on sim2real.cli.cli), so this is fast.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from functools import cache
from pathlib import Path

import click
from click.testing import CliRunner

from sim2real.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SHELL_BREAKS = {"&", "&&", "||", ";", "|", ">", ">>", "2>", "2>&1", "<", ")", "done", "do"}
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


# --- reading the markdown ---------------------------------------------------------------


def split_markdown(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(lines inside fenced code blocks, lines of prose), each as (line number, text)."""
    code, prose, fence = [], [], None
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m and (fence is None or m.group(1) == fence):
            fence = m.group(1) if fence is None else None
            continue
        (code if fence else prose).append((n, line))
    return code, prose


def logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join shell continuation lines (a trailing backslash)."""
    out, buf, start = [], "", None
    for n, line in lines:
        start = n if start is None else start
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf, start = "", None
    if buf:
        out.append((start, buf))
    return out


def sim2real_invocations(line: str) -> list[list[str]]:
    """The argument lists of every sim2real call on one shell line.

    A call is `sim2real ARGS` (after VAR=value, time, nice, ...) or `... -m sim2real.cli
    ARGS` (torchrun, python -m); it ends at the line's end, a comment, or a shell
    operator (`&`, `;`, `|`, `>`, ...). Optional-argument brackets are dropped.
    """
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote: not a shell line
        return []
    calls, i = [], 0
    while i < len(tokens):
        t = tokens[i]
        starts = t == "sim2real" or (t == "sim2real.cli" and i > 0 and tokens[i - 1] == "-m")
        if not starts:
            i += 1
            continue
        args, i = [], i + 1
        while i < len(tokens) and tokens[i] not in SHELL_BREAKS:
            a = tokens[i].strip("[]")
            if a.endswith(";"):
                args.append(a[:-1])
                break
            if a and a not in ("...", "…"):
                args.append(a)
            i += 1
        calls.append(args)
    return calls


def command_lines(path: Path) -> list[tuple[int, str]]:
    """Shell lines of the fenced code blocks and inline code spans that call sim2real."""
    code, prose = split_markdown(path.read_text(encoding="utf-8"))
    found = [(n, l) for n, l in logical_lines(code) if "sim2real" in l]
    for n, line in prose:
        for m in INLINE_CODE.finditer(line):
            span = m.group(2).strip()
            if span.startswith("sim2real "):
                found.append((n, span))
    return found


# --- checking commands against their --help ---------------------------------------------


@cache
def help_options(path: tuple[str, ...]) -> frozenset[str]:
    """The options `sim2real PATH... --help` lists (run in-process)."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, f"sim2real {' '.join(path)} --help failed: {result.output}"
    text = result.output.split("Options:", 1)[-1].split("Commands:", 1)[0]
    return frozenset(OPTION.findall(text))


def check_call(args: list[str]) -> list[str]:
    """Problems with one `sim2real ARGS` call: an unknown command, or options not in --help.

    A bare group (`sim2real segment`) is a mention, not a call; with options it needs a
    subcommand.
    """
    command: click.Command = cli
    path: list[str] = []
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        if sub is None:
            return [f"'sim2real {' '.join(path + [rest[0]])}': no such command"]
        command, path = sub, path + [rest.pop(0)]
    if isinstance(command, click.Group) and rest and not {"--help", "-h", "--version"} & set(rest):
        return [f"'sim2real {' '.join(path)}' needs a subcommand ({', '.join(sorted(command.commands))})"]
    known = help_options(tuple(path))
    problems = []
    for a in rest:
        if a.startswith("-") and len(a) > 1 and not re.fullmatch(r"-[\d.]+", a):
            name = a.split("=", 1)[0]
            if name not in known:
                problems.append(f"'sim2real {' '.join(path)}' has no option {name}")
    return problems


def test_every_documented_command_and_option_exists():
    problems, checked = [], 0
    for doc in DOCS:
        for n, line in command_lines(doc):
            for args in sim2real_invocations(line):
                checked += 1
                problems += [f"{doc.relative_to(ROOT)}:{n}: {p}" for p in check_call(args)]
    assert checked >= 40, f"only {checked} sim2real command lines found in the docs"
    assert not problems, "\n".join(problems)


def script_invocations(line: str) -> list[list[str]]:
    """The arguments given to the headless script sim2real/render.py on one shell line
    (`blender ... -P sim2real/render.py -- ARGS` or `python sim2real/render.py ARGS`)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return []
    calls = []
    for i, t in enumerate(tokens):
        if t.endswith("sim2real/render.py") and i and (tokens[i - 1] == "-P" or "python" in tokens[i - 1]):
            rest = tokens[i + 1:]
            if rest[:1] == ["--"]:
                rest = rest[1:]
            end = next((j for j, r in enumerate(rest) if r in SHELL_BREAKS), len(rest))
            calls.append([r.strip("[]") for r in rest[:end]])
    return calls


def check_script_call(args: list[str]) -> list[str]:
    from sim2real.render import build_parser

    known = {o for a in build_parser()._actions for o in a.option_strings}
    return [f"'sim2real/render.py' has no option {a.split('=', 1)[0]}" for a in args
            if a.startswith("-") and a.split("=", 1)[0] not in known]


def test_every_documented_headless_script_option_exists():
    problems, checked = [], 0
    for doc in DOCS:
        code, _ = split_markdown(doc.read_text(encoding="utf-8"))
        for n, line in logical_lines(code):
            for args in script_invocations(line):
                checked += 1
                problems += [f"{doc.relative_to(ROOT)}:{n}: {p}" for p in check_script_call(args)]
    assert checked >= 3, f"only {checked} render.py lines found in the docs"
    assert not problems, "\n".join(problems)
    # and the check can fail
    assert script_invocations("blender -b -P sim2real/render.py -- --out d --frames 3 # x") == [["--out", "d", "--frames", "3"]]
    assert script_invocations("sim2real/render.py   the headless script") == []
    assert check_script_call(["--out", "d", "--frames", "3"]) == ["'sim2real/render.py' has no option --frames"]


def test_the_command_checker_catches_mistakes():
    # the checks above must be able to fail: wrong options, commands and subcommands
    assert check_call(["render", "--out", "d", "--count", "2", "--workers", "2"]) == []
    assert check_call(["translate", "--method", "colour", "-k", "5", "--no-keep-fov"]) == []
    assert check_call(["segment", "train", "--data", "x", "--init", "c.pt"]) == []
    assert check_call(["render", "--out", "d", "--frames", "2"]) == ["'sim2real render' has no option --frames"]
    assert check_call(["translate", "-q"]) == ["'sim2real translate' has no option -q"]
    assert check_call(["segment", "fit"]) == ["'sim2real segment fit': no such command"]
    assert check_call(["segment", "--data", "x"])[0].startswith("'sim2real segment' needs a subcommand")
    assert check_call(["renders"]) == ["'sim2real renders': no such command"]
    assert check_call(["segment"]) == [] and check_call(["addon", "--help"]) == []
    # what counts as a call on a shell line
    line = "CUDA_VISIBLE_DEVICES=$g sim2real translate --shard $g/8 -k 5 & # one per GPU"
    assert sim2real_invocations(line) == [["translate", "--shard", "$g/8", "-k", "5"]]
    assert sim2real_invocations("torchrun --nproc-per-node 8 -m sim2real.cli train --resume") == [["train", "--resume"]]
    assert sim2real_invocations("sim2real presets --show default > scenes/mine.toml") == [["presets", "--show", "default"]]
    assert sim2real_invocations("pip install -e . && sim2real classes") == [["classes"]]
    assert sim2real_invocations("nice -n 5 sim2real verify d --quiet") == [["verify", "d", "--quiet"]]
    assert sim2real_invocations("python sim2real/render.py --out x") == []
    assert logical_lines([(1, "sim2real render \\"), (2, "  --out d")]) == [(1, "sim2real render    --out d")]


# --- links and images -------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    _, prose = split_markdown(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose:
        m = HEADING.match(line)
        if m:
            s = slug(m.group(2))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return frozenset(out)


def link_problems(doc: Path, root: Path = ROOT) -> list[str]:
    _, prose = split_markdown(doc.read_text(encoding="utf-8"))
    problems = []
    for n, line in prose:
        for m in LINK.finditer(INLINE_CODE.sub("", line)):
            target = m.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            file, _, anchor = target.partition("#")
            dest = (doc.parent / file).resolve() if file else doc
            where = f"{doc.relative_to(root)}:{n}: {target}"
            if not dest.exists():
                problems.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}: no heading #{anchor} in {dest.name}")
    return problems


def test_every_link_and_image_resolves():
    problems = [p for doc in DOCS for p in link_problems(doc)]
    assert not problems, "\n".join(problems)


def test_the_link_checker_catches_mistakes(tmp_path):
    (tmp_path / "a.md").write_text("# Data-set format and `meta.json`\n\n## Two words\n## Two words\n")
    (tmp_path / "pic.png").write_bytes(b"")
    doc = tmp_path / "b.md"
    doc.write_text("![p](pic.png) [ok](a.md#data-set-format-and-metajson) [ok](a.md#two-words-1)\n"
                   "[web](https://example.org/x) `[not a link](nowhere.md)`\n"
                   "```\n[in code](nowhere.md)\n```\n"
                   "[bad](missing.md) ![bad](gone.png) [bad](a.md#three-words) [bad](#nothing)\n")
    found = link_problems(doc, root=tmp_path)
    assert [p.split(": ", 1)[1] for p in found] == [
        "missing.md: no such file", "gone.png: no such file",
        "a.md#three-words: no heading #three-words in a.md", "#nothing: no heading #nothing in b.md"]


# --- the README itself ------------------------------------------------------------------


def test_readme_is_short_and_names_the_ci_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_cmd = [l.strip() for l in ci.splitlines() if "pytest" in l and not l.lstrip().startswith("#")][-1]
    code, _ = split_markdown(readme)
    assert any(l.split("#")[0].strip() == test_cmd for _, l in code), f"README names no `{test_cmd}`"


def test_every_docs_page_is_linked_from_the_readme():
    _, prose = split_markdown((ROOT / "README.md").read_text(encoding="utf-8"))
    linked = {m.group(1).partition("#")[0] for _, l in prose for m in LINK.finditer(l)}
    pages = [d for d in DOCS if d.parent.name == "docs"]
    assert pages, "no docs/*.md pages"
    missing = [d.name for d in pages if f"docs/{d.name}" not in linked]
    assert not missing, f"README links no docs page {missing}"
