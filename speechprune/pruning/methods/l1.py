"""l1: an L1 penalty `l1_strength * sum |w|` over the groups' weights is added to the loss from
start_itr to end_itr; at end_itr each matrix is cut to `target_sparsity` (the one-shot cut) and
trained on with the masks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from speechprune.config import PruningConfig
from speechprune.pruning.methods.oneshot import OneshotGroupConfig, OneshotPruner
from speechprune.pruning.pruner import PrunedGroup, register_method


@dataclass
class L1GroupConfig(OneshotGroupConfig):
    """The penalty acts from `start_itr` to `end_itr`; then the cut to `target_sparsity`."""


@dataclass
class L1Config(PruningConfig):
    method: str = "l1"
    groups: dict[str, L1GroupConfig] = field(default_factory=dict)
    # Strength of the penalty sum(|w|) over the pruned groups' weights, added to the loss.
    l1_strength: float = 1e-5


def l1_penalty(groups: list[PrunedGroup], itr: int, strength: float) -> torch.Tensor | float:
    """strength * sum |w| over the groups whose L1 window start_itr <= itr < end_itr holds `itr`.

    A differentiable tensor, or 0.0 when no group is in its window.
    """
    terms = [
        matrix.param.abs().sum()
        for group in groups
        if group.schedule.start_itr <= itr < group.schedule.end_itr
        for matrix in group.matrices
    ]
    if not terms or strength == 0.0:
        return 0.0
    return strength * torch.stack(terms).sum()


@register_method
class L1Pruner(OneshotPruner):
    name = "l1"
    config_class = L1Config

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        if cfg.l1_strength < 0:
            raise ValueError(f"pruning.l1_strength={cfg.l1_strength}: must be >= 0.")

    def regularization(self) -> torch.Tensor | float:
        """The penalty for the step about to be taken (last_itr + 1)."""
        return l1_penalty(self.groups, self.last_itr + 1, float(self.cfg.l1_strength))
