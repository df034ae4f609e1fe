"""Checkpoints: one dict of tensors and plain values, loadable with ``weights_only=True``.

``kind = "train"`` holds everything to resume exactly (networks, EMA generators,
optimisers, schedulers, step, RNG states, config); ``kind = "inference"`` (from
``sim2real export``) holds the EMA sim -> real model and the config only.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from ..errors import Sim2RealError
from ..io.checkpoint import CheckpointKind
from ..io.checkpoint import load_checkpoint as _load
from ..io.checkpoint import save_checkpoint as _save

FORMAT = "sim2real-translator"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
EXPORT_NAME = "translator.pt"


class CheckpointError(Sim2RealError):
    """A checkpoint is missing, damaged, tampered with or of another kind."""


KIND = CheckpointKind(FORMAT, FORMAT_VERSION, "translator", "'sim2real train' or 'sim2real export'",
                      CheckpointError)


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` (plus format fields) atomically; returns the path."""
    return _save(path, KIND, payload)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the one inside a run folder (export first, else the training one)."""
    p = Path(path)
    if p.is_dir():
        for name in (EXPORT_NAME, CHECKPOINT_NAME):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"run folder {p} holds no {CHECKPOINT_NAME} or {EXPORT_NAME}; "
                              f"train with 'sim2real train --out {p}' first")
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} not found; pass a run folder, its {CHECKPOINT_NAME}, "
                              f"or a file written by 'sim2real export'")
    return p


def load_checkpoint(path: str | os.PathLike, kinds=("train", "inference"), map_location="cpu") -> dict:
    """Load and check a checkpoint safely (``weights_only=True``); clear errors otherwise."""
    p = resolve_checkpoint(path)
    ck = _load(p, KIND, ("config",), map_location)
    if ck.get("kind") not in kinds:
        want = " or ".join(kinds)
        raise CheckpointError(f"checkpoint {p} is a {ck.get('kind')!r} checkpoint, this needs {want}; "
                              + ("resume from the run's checkpoint.pt, not an export"
                                 if "train" in kinds and len(kinds) == 1 else "pass another file"))
    for key in ("model", "ema", "optim", "step") if ck["kind"] == "train" else ("model",):
        if key not in ck:
            raise CheckpointError(f"checkpoint {p} lacks {key!r}; it is truncated or was modified")
    ck["path"] = str(p)
    return ck


def load_state(module: torch.nn.Module, state: dict, what: str, path: str) -> None:
    """``load_state_dict`` with an error that names the checkpoint and the mismatch."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        msg = str(exc).strip().splitlines()
        raise CheckpointError(f"checkpoint {path}: {what} weights do not fit its config "
                              f"({' '.join(m.strip() for m in msg[:3])[:300]}); the file was modified "
                              f"or mixes runs") from None


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rng_state() -> dict:
    """Global torch RNG states (the trainer itself uses per-step seeded generators)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except (RuntimeError, IndexError):
            pass  # resumed on a machine with fewer GPUs: per-step seeding keeps results exact


def to_bytes(obj) -> bytes:
    """Serialise a checkpoint dict to bytes (for tests and hashing)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()
