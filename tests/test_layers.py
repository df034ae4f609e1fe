"""Imports run down the layers: every ``sim2real`` import (module level or inside a function)
goes to a lower layer or stays inside its own package, and no modules import each other in
a circle. Read from the source with ``ast``, so nothing is imported and no edge hides behind
a lazy import."""

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "sim2real"

# Bottom to top. A module belongs to the longest prefix listed; it may import modules of a
# lower layer, or modules of its own package (the first two name parts) in the same layer.
LAYERS = [
    ("sim2real", "sim2real.errors"),                                 # __version__, the error types
    ("sim2real.defaults", "sim2real.classes", "sim2real.io", "sim2real.progress"),
    ("sim2real.config",),
    ("sim2real.scene", "sim2real.dataset"),
    ("sim2real.imaging",),                                           # passes -> arrays, camera effects
    ("sim2real.blender",),                                           # the only bpy code
    ("sim2real.rendering",),                                         # the render job
    ("sim2real.segment",),
    ("sim2real.appearance",),
    ("sim2real.translate",),
    ("sim2real.segment.experiment",),                                # trains on translated sets
    ("sim2real.addon_cli", "sim2real.render",                        # commands and entry points
     "sim2real.rendering.cli", "sim2real.segment.cli", "sim2real.translate.cli", "sim2real.dataset.cli"),
    ("sim2real.cli",),                                               # the command group of them all
]
# Packages whose own modules may import each other in a circle (their imports of other
# packages are checked like everyone's): none.
CYCLES_ALLOWED_INSIDE = ()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The sim2real modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod for a in node.names]
        else:
            continue
        out.update(t for t in targets if t == "sim2real" or t.startswith("sim2real."))
    return out


def private_imports(name: str, path: Path) -> list[str]:
    """``from <another package> import _name``: a private name used outside its package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    own = ".".join(name.split(".")[:2])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("sim2real") or ".".join(mod.split(".")[:2]) == own:
                continue
            out += [f"{name} imports {mod}.{a.name}" for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")]
    return out


# Known, to go when translate.evaluate names these publicly (its inside is being reshaped).
PRIVATE_ALLOWED = {"sim2real.segment.experiment imports sim2real.translate.evaluate._cls_pair",
                   "sim2real.segment.experiment imports sim2real.translate.evaluate._split"}


def layer_of(name: str) -> tuple[int, str]:
    """(layer index, the prefix that placed it)."""
    best = None
    for i, group in enumerate(LAYERS):
        for prefix in group:
            if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (i, prefix)
    assert best is not None, f"{name} is in no layer: add it to LAYERS in {__file__}"
    return best


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: {t for t in imports_of(name, path, known) if t != name} for name, path in mods.items()}


def upward_edges(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for a, targets in edges.items():
        la, pa = layer_of(a)
        for b in targets:
            lb, pb = layer_of(b)
            if lb < la or (lb == la and pa == pb):
                continue
            bad.append(f"{a} (layer {la}, {pa}) imports {b} (layer {lb}, {pb})")
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    def allowed(a, b):
        return not any(a.startswith(p + ".") and b.startswith(p + ".") for p in CYCLES_ALLOWED_INSIDE)

    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if not allowed(v, w):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_import_runs_down_the_layers():
    bad = upward_edges(graph())
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_cycles():
    found = cycles(graph())
    assert not found, "modules importing each other in a circle: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_private_names_across_packages():
    bad = [x for name, path in modules().items() for x in private_imports(name, path) if x not in PRIVATE_ALLOWED]
    assert not bad, "private names used outside their package:\n" + "\n".join(bad)


def test_the_checks_see_what_they_claim(tmp_path, monkeypatch):
    """The reader and both checks on a planted package: lazy and relative imports count."""
    root = tmp_path / "sim2real"
    (root / "imaging").mkdir(parents=True)
    (root / "rendering").mkdir()
    (root / "__init__.py").write_text("")
    (root / "imaging" / "__init__.py").write_text("")
    (root / "rendering" / "__init__.py").write_text("")
    (root / "imaging" / "a.py").write_text("def f():\n    from ..rendering import job\n")
    (root / "imaging" / "b.py").write_text("from .a import f\n")
    (root / "rendering" / "job.py").write_text("from sim2real.imaging import b\nfrom ..imaging.a import _g, f\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", root)
    edges = graph()
    assert edges["sim2real.imaging.a"] == {"sim2real.rendering.job"}
    assert edges["sim2real.imaging.b"] == {"sim2real.imaging.a"}
    assert upward_edges(edges) == [
        "sim2real.imaging.a (layer 4, sim2real.imaging) imports sim2real.rendering.job (layer 6, sim2real.rendering)"]
    assert cycles(edges) == [["sim2real.imaging.a", "sim2real.imaging.b", "sim2real.rendering.job"]]
    assert private_imports("sim2real.rendering.job", root / "rendering" / "job.py") == [
        "sim2real.rendering.job imports sim2real.imaging.a._g"]
