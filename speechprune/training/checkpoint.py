"""Checkpoints on disk: written atomically, so a kill at any moment leaves the last good one.

A checkpoint is one `torch.save`d dict. Every checkpoint carries what is needed to rebuild the
model without the run directory: the resolved config and the alphabet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from speechprune.atomic_write import atomic_open


# Written into every training checkpoint, and checked by whoever loads one.
CHECKPOINT_FORMAT = "speechprune-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (disk full, file size limit, ...); the message
    names the file. Whatever checkpoint that path held before is left as it was."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` atomically (speechprune.atomic_write: a temporary file beside
    it, flushed to disk, renamed over it). A write that fails half-way (disk full) removes the
    temporary file and raises CheckpointWriteError; the previous checkpoint stays."""
    path = Path(path)
    try:
        with atomic_open(path, "wb") as out:
            torch.save(state, out)
    except BaseException as error:
        failed_write = _os_error_behind(error)
        if failed_write is not None:
            raise CheckpointWriteError(
                f"{path}: checkpoint not written ({failed_write.strerror or failed_write}); the "
                f"{path.name} there before is kept") from failed_write
        raise


def _os_error_behind(error: BaseException) -> OSError | None:
    """`error` if it is an OSError, else the first OSError it was raised from or while handling:
    torch.save reports a failed write as a RuntimeError of its zip writer, raised while closing
    the archive after the OSError."""
    seen: BaseException | None = error
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__cause__ or seen.__context__
    return seen


def model_checkpoint(config: dict[str, Any], alphabet: str, model_state: dict[str, Any],
                     feature_stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of a checkpoint that inference needs (what the recognizer and the exporter
    read): format, version, resolved config, alphabet symbols, feature statistics and weights.
    Training checkpoints add the optimizer, scheduler, pruner and loop state."""
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": config,
            "alphabet": alphabet, "feature_stats": feature_stats, "model": model_state}


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`. Only tensors and plain data are loaded
    (`weights_only`), so a checkpoint from elsewhere cannot run code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several unrelated types for a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from None


def resolve_checkpoint(model_path: str | Path, which: str = "best") -> Path:
    """A checkpoint file from a checkpoint path or a run directory (its `best`, else `last`)."""
    model_path = Path(model_path)
    if model_path.is_dir():
        for name in (which, "last"):
            candidate = model_path / "checkpoints" / f"{name}.pt"
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{model_path}: run directory holds no checkpoints/{which}.pt or last.pt")
    if not model_path.is_file():
        raise CheckpointError(f"{model_path}: no such checkpoint file or run directory")
    return model_path
