"""Parameter counts of a model, dense or pruned: totals, non-zeros, per parameter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import torch
from torch import nn


class GroupOwner(Protocol):
    """What the report needs of a pruner (speechprune.pruning.pruner.Pruner): which group owns
    each pruned parameter. A protocol, so the pruner (which reports its sparsity) and this
    module do not import each other."""

    def group_of_parameter(self) -> dict[str, str]: ...


@dataclass
class ParameterCount:
    name: str
    shape: tuple[int, ...]
    numel: int
    nonzero: int
    group: Optional[str]  # the pruning group that owns it, None when not pruned

    @property
    def sparsity(self) -> float:
        """Fraction of entries that are exactly zero."""
        return 1.0 - self.nonzero / self.numel if self.numel else 0.0


@dataclass
class SparsityReport:
    parameters: list[ParameterCount]

    @property
    def total(self) -> int:
        return sum(p.numel for p in self.parameters)

    @property
    def nonzero(self) -> int:
        return sum(p.nonzero for p in self.parameters)

    @property
    def pruned_groups_total(self) -> int:
        return sum(p.numel for p in self.parameters if p.group is not None)

    @property
    def pruned_groups_nonzero(self) -> int:
        return sum(p.nonzero for p in self.parameters if p.group is not None)

    def scalars(self) -> dict[str, float]:
        """Model-level counts: "params/total", "params/nonzero", "params/pruned_groups_*", "sparsity/model"."""
        return {
            "params/total": float(self.total),
            "params/nonzero": float(self.nonzero),
            "params/pruned_groups_total": float(self.pruned_groups_total),
            "params/pruned_groups_nonzero": float(self.pruned_groups_nonzero),
            "sparsity/model": 1.0 - self.nonzero / self.total if self.total else 0.0,
        }


@torch.no_grad()
def sparsity_report(model: nn.Module, pruner: Optional[GroupOwner] = None) -> SparsityReport:
    """Count every parameter's entries and exact zeros; `pruner` (or None for a dense model)
    names the group of each pruned parameter."""
    owner = pruner.group_of_parameter() if pruner is not None else {}
    counts = [
        ParameterCount(
            name=name,
            shape=tuple(param.shape),
            numel=param.numel(),
            nonzero=int(torch.count_nonzero(param).item()),
            group=owner.get(name),
        )
        for name, param in model.named_parameters()
    ]
    return SparsityReport(counts)
