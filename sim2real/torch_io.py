"""The package's one ``torch.load``: checkpoints are plain dicts read with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import zipfile

from .errors import one_line


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
        raise CheckpointLoadError(True, one_line(exc)) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise CheckpointLoadError(False, one_line(exc, with_type=True)) from None
