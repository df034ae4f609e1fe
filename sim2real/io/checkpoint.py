"""The package's one ``torch.load`` and its one checkpoint format check.

Checkpoints (translator and segmenter alike) are one plain dict of tensors and values with
``format`` and ``format_version`` keys, written atomically and read with
``weights_only=True``. Each kind names its format, what writes it and the keys it needs in
a :class:`CheckpointKind`; :func:`load_checkpoint` does every check and phrases every error.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import Sim2RealError, one_line


class CheckpointLoadError(Exception):
    """torch could not read a file: ``unsafe`` (weights_only refused an object) or damaged."""

    def __init__(self, unsafe: bool, detail: str):
        super().__init__(detail)
        self.unsafe = unsafe
        self.detail = detail


def load_weights_only(path: str | os.PathLike, map_location="cpu"):
    """``torch.load(path, weights_only=True)``; failures become :class:`CheckpointLoadError`."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only explains itself over many lines: keep the line that says what it met;
        # a refused global means unsafe objects, anything else (bad opcode...) a damaged file
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "global" in ln.lower() or ln.startswith("Unsupported")),
                      one_line(exc))
        unsafe = any("global" in ln.lower() for ln in lines)
        raise CheckpointLoadError(unsafe, one_line(detail)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise CheckpointLoadError(False, one_line(exc, with_type=True)) from None


@dataclass(frozen=True)
class CheckpointKind:
    """One checkpoint format: its tag, version, a name for messages and what writes it."""

    format: str                 # e.g. "sim2real-translator"
    version: int
    what: str                   # "translator", "segmenter"
    made_by: str                # "'sim2real train' or 'sim2real export'"
    error: type = Sim2RealError  # the error type raised for this kind


def save_checkpoint(path: str | os.PathLike, kind: CheckpointKind, payload: dict) -> Path:
    """Write ``payload`` plus the format fields atomically (a crash keeps the previous file)."""
    import torch

    from . import atomic_path

    path = Path(path)
    payload = {"format": kind.format, "format_version": kind.version, "package_version": __version__,
               **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, kind: CheckpointKind, required=(), map_location="cpu") -> dict:
    """Load ``path`` safely and check format, version and ``required`` keys; one clear error otherwise."""
    p = Path(path)
    err = kind.error
    if p.is_dir() or not p.is_file():
        raise err(f"checkpoint {p} does not exist or is not a file; pass a file written by {kind.made_by}")
    try:
        ck = load_weights_only(p, map_location)
    except CheckpointLoadError as exc:
        if exc.unsafe:
            raise err(f"checkpoint {p} holds objects that cannot be loaded safely (weights_only=True refused: "
                      f"{exc.detail}); it was not written by sim2real or was modified; use the original file "
                      f"from {kind.made_by}") from None
        raise err(f"checkpoint {p} is damaged or not a PyTorch file ({exc.detail}); use an intact copy") from None
    if not isinstance(ck, dict) or ck.get("format") != kind.format:
        found = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        raise err(f"{p} is a PyTorch file but not a sim2real {kind.what} checkpoint (format {found!r}); "
                  f"pass a file from {kind.made_by}")
    try:
        version = int(ck.get("format_version", -1))
    except (TypeError, ValueError):
        version = -1
    if version > kind.version:
        raise err(f"checkpoint {p} has format_version {ck['format_version']}, newer than this sim2real "
                  f"understands ({kind.version}); upgrade sim2real")
    for key in required:
        if key not in ck:
            raise err(f"checkpoint {p} lacks {key!r}; it is truncated or was modified")
    return ck
