"""Paths in a config: relative to where the command was started, wherever Hydra runs it."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import to_absolute_path


def absolute(path: str) -> str:
    """A config path relative to where the command was started (Hydra may change the cwd)."""
    try:
        return to_absolute_path(path)
    except ValueError:  # outside a Hydra app (tests, scripts)
        return str(Path(path).absolute())
