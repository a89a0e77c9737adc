"""Checkpoints on disk: written atomically, so a kill at any moment leaves the last good one.

A checkpoint is one `torch.save`d dict. Every checkpoint carries what is needed to rebuild the
model without the run directory: the resolved config and the alphabet. Training writes them and
resumes from them; inference and export read them (`load_trained_model`), which is why they
live here, below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from speechprune.atomic_write import atomic_open
from speechprune.config import DataConfig, ModelConfig
from speechprune.data.features import FeatureExtractor, stats_from_dict
from speechprune.data.text import Alphabet
from speechprune.model.deepspeech2 import DeepSpeech2
from speechprune.model.run_dir import RunDirectory


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
        run = RunDirectory(model_path)
        for name in (which, "last"):
            candidate = run.checkpoint(name)
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"{model_path}: run directory holds no "
                              f"{run.checkpoint(which).relative_to(model_path)} or "
                              f"{run.last_checkpoint.name}")
    if not model_path.is_file():
        raise CheckpointError(f"{model_path}: no such checkpoint file or run directory")
    return model_path


@dataclass
class TrainedModel:
    """The dense model of a training checkpoint, in eval mode, with what its inputs and outputs
    need: the alphabet, the feature pipeline (with the run's statistics) and the data config."""

    model: DeepSpeech2
    alphabet: Alphabet
    features: FeatureExtractor
    data_cfg: DataConfig
    source: Path  # the checkpoint file


def load_trained_model(model_path: str | Path, device: torch.device,
                       which: str = "best") -> TrainedModel:
    """The model of a checkpoint file, or of a run directory's `which` (else `last`)
    checkpoint, on `device`. Raises CheckpointError naming the file when it is missing, not
    a speechprune training checkpoint, or its alphabet does not fit its config."""
    path = resolve_checkpoint(model_path, which)
    checkpoint = load_checkpoint(path, map_location=device)
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a speechprune training checkpoint")
    config = checkpoint["config"]
    data_cfg: DataConfig = OmegaConf.merge(OmegaConf.structured(DataConfig), config["data"])
    model_cfg: ModelConfig = OmegaConf.merge(OmegaConf.structured(ModelConfig), config["model"])
    alphabet = Alphabet.from_config(data_cfg.text)
    if alphabet.symbols != checkpoint["alphabet"]:
        raise CheckpointError(f"{path}: alphabet in the config and the checkpoint differ")
    features = FeatureExtractor(data_cfg.features, stats_from_dict(checkpoint["feature_stats"]))
    model = DeepSpeech2(model_cfg, features.num_features, len(alphabet)).to(device)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    return TrainedModel(model, alphabet, features, data_cfg, path)
