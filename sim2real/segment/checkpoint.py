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

FORMAT = "sim2real-segmenter"
FORMAT_VERSION = 1


class CheckpointError(Sim2RealError):
    """A checkpoint is missing, corrupt or not a segmenter checkpoint."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` atomically (a crash leaves the previous checkpoint intact)."""
    import torch

    from ..io import atomic_path

    state = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and validate a checkpoint with ``weights_only=True``; clear errors otherwise."""
    from ..torch_io import CheckpointLoadError, load_weights_only

    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass a file written by 'sim2real segment train' "
                              f"(RUN/checkpoint.pt) or its run folder")
    try:
        state = load_weights_only(path, map_location)
    except CheckpointLoadError as exc:
        raise CheckpointError(f"{path} is not a loadable segmenter checkpoint (corrupt, truncated or not "
                              f"a safe weights-only file): {exc.detail}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        fmt = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a segmenter checkpoint (format {fmt!r}, expected {FORMAT!r}); "
                              f"translator checkpoints go to 'sim2real translate', not 'segment'")
    if int(state.get("format_version", -1)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {state['format_version']} is newer than this sim2real "
                              f"understands ({FORMAT_VERSION}); upgrade sim2real")
    for key in ("config", "classes", "model", "step"):
        if key not in state:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}; it is damaged or from another tool")
    return state
