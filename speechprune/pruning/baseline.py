"""The dense baseline run a pruning schedule takes its per-matrix percentiles q from (Eq. 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from speechprune.model.run_dir import RunDirectory

# Relative to the baseline run directory.
BASELINE_CHECKPOINT = RunDirectory(Path()).best_checkpoint


def load_baseline_weights(run_dir: str | Path, params: Sequence[tuple[str, nn.Parameter]]) -> dict[str, torch.Tensor]:
    """The baseline's weights (on CPU) for each named parameter in `params`.

    Reads `<run_dir>/checkpoints/best.pt`, a torch.save'd dict whose "model" key is the dense
    model's state_dict. Raises FileNotFoundError when it is missing and ValueError when it lacks
    a parameter or a parameter's shape differs from the model's.
    """
    path = Path(run_dir) / BASELINE_CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(
            f"pruning.baseline={str(run_dir)!r}: no {path}; point it at a finished dense run directory "
            f"(one that holds {BASELINE_CHECKPOINT}) or set pruning.baseline=null to take q from the model itself."
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ValueError(f"{path}: expected a dict with a 'model' state_dict, found {type(checkpoint).__name__} without it.")
    state = checkpoint["model"]
    weights = {}
    for name, param in params:
        if name not in state:
            raise ValueError(
                f"{path}: the baseline has no parameter {name!r}; was it trained with the same model "
                "configuration (rnn_type, num_layers, bidirectional)?"
            )
        if tuple(state[name].shape) != tuple(param.shape):
            raise ValueError(
                f"{path}: parameter {name!r} has shape {tuple(state[name].shape)} in the baseline but "
                f"{tuple(param.shape)} in the model; the baseline must have the same architecture."
            )
        weights[name] = state[name]
    return weights
