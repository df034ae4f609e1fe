"""Load and validate scene presets (TOML) against :mod:`sim2real.defaults`.

The result is a plain nested dict with every field filled in, so the sampler never has
to know about defaults, and a data set's ``dataset.json`` records exactly what was used.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from pathlib import Path

from .classes import ClassTable
from .defaults import EXTRA_CLASS_SCHEMA, MESH_SCHEMA, SCHEMA, F
from .errors import ConfigError, one_line

SCENES_DIR = Path(__file__).resolve().parent.parent / "scenes"


def preset_names() -> list[str]:
    """Names of the presets shipped in ``scenes/``."""
    return sorted(p.stem for p in SCENES_DIR.glob("*.toml")) if SCENES_DIR.is_dir() else []


def resolve_preset(preset: str | Path) -> Path:
    """A preset file path from a path or a shipped preset name (``default``)."""
    p = Path(preset)
    if p.is_file():
        return p
    named = SCENES_DIR / f"{preset}.toml"
    if p.suffix == "" and named.is_file():
        return named
    known = ", ".join(preset_names()) or "none found"
    raise ConfigError(f"preset {preset}: no such file; give a .toml path or one of: {known}")


def missing_meshes(preset: str | Path) -> list[Path]:
    """The mesh files a preset's ``[[meshes]]`` name that do not exist (e.g. a shipped
    patient preset whose meshes stay in a checkout's ``../shared/data``)."""
    path = resolve_preset(preset)
    try:
        meshes = tomllib.loads(path.read_text()).get("meshes", [])
    except (OSError, tomllib.TOMLDecodeError):
        return []  # not our question: load_config reports it
    out = []
    for m in meshes if isinstance(meshes, list) else []:
        if isinstance(m, dict) and isinstance(m.get("path"), str):
            p = Path(m["path"]).expanduser()
            p = p if p.is_absolute() else path.parent / p
            if not p.is_file():
                out.append(p)
    return out


def defaults() -> dict:
    """The built-in default configuration (what an empty preset gives)."""
    cfg = {sec: {k: validate_value(f"{sec}.{k}", f, copy.deepcopy(f.default), "built-in defaults")
                 for k, f in fields.items()} for sec, fields in SCHEMA.items()}
    cfg["meshes"] = []
    cfg["classes"] = []
    return cfg


def load_config(preset: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Load, validate and complete a preset; ``overrides`` is ``{"render.samples": 4, ...}``."""
    cfg = defaults()
    where = "built-in defaults"
    if preset is not None:
        path = resolve_preset(preset)
        where = f"preset {path}"
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML ({one_line(exc)})") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot be read ({exc.strerror})") from None
        _merge(cfg, data, where, base_dir=path.parent)
        cfg["preset_path"] = str(path.resolve())
    for dotted, value in (overrides or {}).items():
        sec, _, key = dotted.partition(".")
        _merge(cfg, {sec: {key: value}}, f"--set {dotted}={toml_value(value)}")  # blame the value given
    if overrides:
        where += f" with --set {', '.join(overrides)}"
    _check_consistency(cfg, where)
    return cfg


def class_table(cfg: dict) -> ClassTable:
    return ClassTable.with_extras(cfg.get("classes", []))


def fingerprint(cfg: dict, **extra) -> str:
    """A stable hash of everything that determines the samples (config + seed + ...).

    Where the preset file lives and how many CPU threads render do not change a sample,
    so a resume may differ in those.
    """
    cfg = {k: v for k, v in cfg.items() if k != "preset_path"}
    cfg["render"] = {k: v for k, v in cfg["render"].items() if k != "threads"}
    blob = json.dumps({"config": cfg, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def toml_value(v) -> str:
    """One value as TOML (bool, number, string, nested lists)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def to_toml(cfg: dict) -> str:
    """A complete config as an editable TOML preset (round-trips through load_config)."""
    val = toml_value

    lines = []
    for sec, fields in SCHEMA.items():
        lines.append(f"[{sec}]")
        for key, f in fields.items():
            doc = f"  # {f.doc}" if f.doc else ""
            lines.append(f"{key} = {val(cfg[sec][key])}{doc}")
        lines.append("")
    for name, items in (("classes", cfg.get("classes", [])), ("meshes", cfg.get("meshes", []))):
        for item in items:
            lines.append(f"[[{name}]]")
            lines += [f"{k} = {val(v)}" for k, v in item.items()]
            lines.append("")
    return "\n".join(lines)


def _merge(cfg: dict, data: dict, where: str, base_dir: Path | None = None) -> None:
    for sec, body in data.items():
        if sec == "meshes":
            cfg["meshes"] = [_mesh_entry(i, m, where, base_dir) for i, m in enumerate(_list_of_tables(body, sec, where))]
            continue
        if sec == "classes":
            cfg["classes"] = [_class_entry(i, c, where) for i, c in enumerate(_list_of_tables(body, sec, where))]
            continue
        if sec not in SCHEMA:
            raise ConfigError(f"{where}: unknown section [{sec}]; known: "
                              f"{', '.join([*SCHEMA, 'meshes', 'classes'])}")
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: [{sec}] must be a table")
        for key, value in body.items():
            if key not in SCHEMA[sec]:
                raise ConfigError(f"{where}: unknown field {sec}.{key}; known in [{sec}]: "
                                  f"{', '.join(SCHEMA[sec])}")
            cfg[sec][key] = validate_value(f"{sec}.{key}", SCHEMA[sec][key], value, where)


def _list_of_tables(body, sec, where):
    if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
        raise ConfigError(f"{where}: '{sec}' must be an array of tables ([[{sec}]])")
    return body


def _mesh_entry(i: int, m: dict, where: str, base_dir: Path | None) -> dict:
    out = {}
    for key, value in m.items():
        if key not in MESH_SCHEMA:
            raise ConfigError(f"{where}: unknown field meshes[{i}].{key}; known: {', '.join(MESH_SCHEMA)}")
        out[key] = validate_value(f"meshes[{i}].{key}", MESH_SCHEMA[key], value, where)
    for key, f in MESH_SCHEMA.items():
        if key not in out:
            if f.default is None:
                raise ConfigError(f"{where}: meshes[{i}] needs '{key}' ({f.doc})")
            out[key] = f.default
    p = Path(out["path"]).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = (base_dir / p)
    out["path"] = str(p.resolve())
    return out


def _class_entry(i: int, c: dict, where: str) -> dict:
    out = {}
    for key, value in c.items():
        if key not in EXTRA_CLASS_SCHEMA:
            raise ConfigError(f"{where}: unknown field classes[{i}].{key}; known: {', '.join(EXTRA_CLASS_SCHEMA)}")
        out[key] = validate_value(f"classes[{i}].{key}", EXTRA_CLASS_SCHEMA[key], value, where)
    if "name" not in out:
        raise ConfigError(f"{where}: classes[{i}] needs a 'name'")
    return out


def _num(name, v, where, lo, hi, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise ConfigError(f"{where}: {name} must be {'an integer' if integer else 'a number'}, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(f"{where}: {name} must be within {lo:g}..{hi:g}, got {v!r}")
    return v


def validate_value(name: str, f: F, v, where: str):
    """Check one value against its field spec; returns the normalised value."""
    k = f.kind
    if k == "bool":
        if not isinstance(v, bool):
            raise ConfigError(f"{where}: {name} must be true or false, got {v!r}")
        return v
    if k == "str":
        if not isinstance(v, str):
            raise ConfigError(f"{where}: {name} must be a string, got {v!r}")
        return v
    if k == "choice":
        if v not in f.choices:
            raise ConfigError(f"{where}: {name} must be one of {', '.join(map(str, f.choices))}, got {v!r}")
        return v
    if k == "list_str":
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{where}: {name} must be a non-empty list of strings, got {v!r}")
        return list(v)
    if k in ("float", "int"):
        return _num(name, v, where, f.lo, f.hi, integer=(k == "int"))
    if k in ("range", "int_range"):
        integer = k == "int_range"
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = [v, v]
        if not isinstance(v, list) or len(v) != 2:
            raise ConfigError(f"{where}: {name} must be [min, max] or one number, got {v!r}")
        lo, hi = (_num(name, x, where, f.lo, f.hi, integer) for x in v)
        if lo > hi:
            raise ConfigError(f"{where}: {name} must be [min, max] with min <= max, got {v!r}")
        return [lo, hi]
    if k == "int_pair":
        if not isinstance(v, list) or len(v) != 2:
            raise ConfigError(f"{where}: {name} must be [width, height], got {v!r}")
        for x in v:
            if isinstance(x, int) and not isinstance(x, bool) and x <= 0:
                raise ConfigError(f"{where}: {name} must be positive, got {v!r}")
        return [_num(name, x, where, f.lo, f.hi, True) for x in v]
    if k == "vec3":
        if not isinstance(v, list) or len(v) != 3:
            raise ConfigError(f"{where}: {name} must be [x, y, z], got {v!r}")
        out = [_num(name, x, where, f.lo, f.hi) for x in v]
        if sum(x * x for x in out) < 1e-12:
            raise ConfigError(f"{where}: {name} must not be zero")
        return out
    if k == "color":
        if (isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v)):
            v = [v, v]
        if not (isinstance(v, list) and len(v) == 2 and all(isinstance(c, list) and len(c) == 3 for c in v)):
            raise ConfigError(f"{where}: {name} must be [r, g, b] or [[r, g, b], [r, g, b]], got {v!r}")
        out = [[_num(name, x, where, f.lo, f.hi) for x in c] for c in v]
        if any(a > b for a, b in zip(*out)):
            raise ConfigError(f"{where}: {name} must be [low, high] with low <= high per channel, got {v!r}")
        return out
    if k == "rgb255":
        if not (isinstance(v, list) and len(v) == 3):
            raise ConfigError(f"{where}: {name} must be [r, g, b] in 0..255, got {v!r}")
        return [_num(name, x, where, 0, 255, True) for x in v]
    if k == "weights":  # as many non-negative numbers as the default has, not all zero
        n = len(f.default)
        if not (isinstance(v, list) and len(v) == n):
            raise ConfigError(f"{where}: {name} must be a list of {n} numbers, got {v!r}")
        out = [_num(name, x, where, f.lo, f.hi) for x in v]
        if sum(out) <= 0:
            raise ConfigError(f"{where}: {name} must have at least one weight above 0, got {v!r}")
        return out
    if k == "points2":
        if not (isinstance(v, list) and v and all(isinstance(p, list) and len(p) == 2 for p in v)):
            raise ConfigError(f"{where}: {name} must be a list of [x, y] points, got {v!r}")
        return [[_num(name, x, where, f.lo, f.hi) for x in p] for p in v]
    raise AssertionError(f"unknown field kind {k}")


def _check_consistency(cfg: dict, where: str) -> None:
    try:
        table = class_table(cfg)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"{where}: [[classes]]: {one_line(exc)} (ids and names must be unique, ids 10..255)") from None
    for t in cfg["scene"]["target"]:
        if t not in table:
            raise ConfigError(f"{where}: scene.target names unknown class {t!r}; known: {', '.join(table.names)}")
    for kind in cfg["instruments"]["kinds"]:
        if kind not in ("grasper", "hook", "clip_applier", "scissors", "suction"):
            raise ConfigError(f"{where}: instruments.kinds has {kind!r}; known: grasper, hook, clip_applier, "
                              f"scissors, suction")
    if cfg["scene"]["mode"] == "meshes":
        if not cfg["meshes"]:
            raise ConfigError(f"{where}: scene.mode = 'meshes' needs at least one [[meshes]] entry")
        for i, m in enumerate(cfg["meshes"]):
            if m["class"] not in table:
                raise ConfigError(f"{where}: meshes[{i}].class {m['class']!r} is not a class; "
                                  f"known: {', '.join(table.names)} (add extras with [[classes]])")
            if Path(m["path"]).is_dir():
                raise ConfigError(f"{where}: meshes[{i}].path {m['path']} is a folder, not a mesh file; "
                                  f"give the path of an STL, PLY or OBJ file")
            if not Path(m["path"]).is_file():
                raise ConfigError(f"{where}: meshes[{i}].path {m['path']} does not exist; "
                                  f"fix the path (relative paths are relative to the preset file)")
        mesh_classes = {m["class"] for m in cfg["meshes"]}
        if not any(t in mesh_classes for t in cfg["scene"]["target"]):
            raise ConfigError(f"{where}: scene.target {cfg['scene']['target']} names no class of the "
                              f"[[meshes]] ({', '.join(sorted(mesh_classes))})")
    cam = cfg["camera"]
    if cam["clip_start_m"] >= cam["clip_end_m"]:
        raise ConfigError(f"{where}: camera.clip_start_m must be below camera.clip_end_m")
