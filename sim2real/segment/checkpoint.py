"""Segmenter checkpoints: one dict of plain values and tensors, loadable with
``torch.load(weights_only=True)``.

Keys: ``format``, ``format_version``, ``config`` (a :class:`TrainConfig` as a dict),
``classes`` (names of ids 1..), ``model`` (state dict), ``optimizer`` (state dict or
None), ``step``, ``history`` (loss log), ``data`` (what it was trained on), ``init_from``,
``wall_s``. Everything needed to resume exactly; the per-step RNG is derived from
(seed, step), so no RNG state has to be stored.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import Sim2RealError
from ..io.checkpoint import CheckpointKind
from ..io.checkpoint import load_checkpoint as _load
from ..io.checkpoint import save_checkpoint as _save

FORMAT = "sim2real-segmenter"
FORMAT_VERSION = 1


class CheckpointError(Sim2RealError):
    """A checkpoint is missing, corrupt or not a segmenter checkpoint."""


KIND = CheckpointKind(FORMAT, FORMAT_VERSION, "segmenter", "'sim2real segment train' (RUN/checkpoint.pt)",
                      CheckpointError)


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` atomically (a crash leaves the previous checkpoint intact)."""
    _save(path, KIND, state)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and validate a checkpoint (a file or its run folder) with ``weights_only=True``."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    return _load(path, KIND, ("config", "classes", "model", "step"), map_location)
