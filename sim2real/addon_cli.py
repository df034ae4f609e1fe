"""``sim2real addon build``: the installable Blender extension zip.

The zip holds ``blender_addon/`` (manifest + panel) at its root, the sim2real core
(``sim2real/``, without the click CLI and the torch-only segmenter) and the presets
(``scenes/``), so the extension runs in Blender's own Python with nothing installed.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import click

from . import __version__
from .errors import Sim2RealError

REPO = Path(__file__).resolve().parent.parent
ADDON_DIR = REPO / "blender_addon"
MANIFEST = "blender_manifest.toml"
# Core files Blender does not need: the click commands and the torch-only segmenter.
CORE_EXCLUDE = ("segment/", "cli.py", "rendering/cli.py", "addon_cli.py", "translate/cli.py")


def _files(base: Path, exclude=()) -> list[Path]:
    out = []
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        if not p.is_file() or "__pycache__" in p.parts or p.suffix == ".pyc" or p.name.startswith("."):
            continue
        if any(rel == e or (e.endswith("/") and rel.startswith(e)) for e in exclude):
            continue
        out.append(p)
    return out


def manifest_text() -> str:
    """The add-on manifest with ``version`` set to the package version."""
    text = (ADDON_DIR / MANIFEST).read_text()
    return re.sub(r'(?m)^version\s*=\s*"[^"]*"', f'version = "{__version__}"', text, count=1)


def build_zip(out_dir: str | Path) -> Path:
    """Write ``sim2real-<version>.zip`` into ``out_dir``; returns its path."""
    from .io import atomic_path

    for needed in (ADDON_DIR / MANIFEST, REPO / "LICENSE"):
        if not needed.is_file():
            raise Sim2RealError(f"{needed} not found: building the add-on needs a source checkout of "
                                f"sim2real (pip install -e .)")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Sim2RealError(f"--out {out_dir}: cannot create the folder ({exc.strerror})") from None
    path = out_dir / f"sim2real-{__version__}.zip"
    entries: list[tuple[str, Path | str]] = [(MANIFEST, manifest_text())]
    entries += [(p.relative_to(ADDON_DIR).as_posix(), p) for p in _files(ADDON_DIR) if p.name != MANIFEST]
    pkg = REPO / "sim2real"
    entries += [("sim2real/" + p.relative_to(pkg).as_posix(), p) for p in _files(pkg, CORE_EXCLUDE)]
    entries += [("scenes/" + p.name, p) for p in sorted((REPO / "scenes").glob("*.toml"))]
    entries.append(("LICENSE", REPO / "LICENSE"))  # the MIT licence of pyproject.toml
    try:
        with atomic_path(path) as tmp:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                for name, src in entries:
                    if isinstance(src, str):
                        z.writestr(name, src)
                    else:
                        z.write(src, name)
    except OSError as exc:
        raise Sim2RealError(f"--out {out_dir}: cannot write {path.name} ({exc.strerror})") from None
    return path


@click.group()
def addon():
    """The Blender add-on (extension for Blender 4.2+)."""


@addon.command("build")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="folder for the extension zip")
def build_cmd(out):
    """Build the installable extension zip (core and presets bundled).

    Example: sim2real addon build --out dist, then in Blender: Edit → Preferences →
    Get Extensions → ⌄ → Install from Disk…, or in a terminal:
    blender --command extension install-file -r user_default -e dist/sim2real-0.1.0.zip
    """
    path = build_zip(out)
    click.echo(f"{path}")
    click.echo(f"install: Blender → Edit → Preferences → Get Extensions → ⌄ → Install from Disk… → {path.name}\n"
               f"     or: blender --command extension install-file -r user_default -e {path}", err=True)


commands = [addon]
