"""TensorBoard logging: scalars, text samples, weight histograms and the HPARAMS entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from speechprune.config import flatten


def open_writer(path: Path, resume_step: int) -> SummaryWriter:
    """A writer that, on resume, discards events logged after the checkpoint's step
    (they belong to the part of the killed run that is being redone)."""
    return SummaryWriter(log_dir=str(path), purge_step=resume_step if resume_step > 0 else None)


def log_scalars(writer: SummaryWriter, scalars: Mapping[str, float], step: int,
                prefix: str = "") -> None:
    for name, value in scalars.items():
        writer.add_scalar(f"{prefix}{name}", value, step)


def log_hparams(writer: SummaryWriter, config: Mapping[str, Any],
                metrics: Mapping[str, float], step: int) -> None:
    """Write the flattened config and final metrics into this run's own event file, so the
    HPARAMS dashboard shows one row per run of a sweep (SummaryWriter.add_hparams would
    create a separate sub-run instead)."""
    experiment, start, end = hparams_summary(flatten(config), dict(metrics))
    for summary in (experiment, start, end):
        writer.file_writer.add_summary(summary)
    for name, value in metrics.items():
        writer.add_scalar(name, value, step)
