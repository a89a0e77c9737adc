"""Layer groups: which of a model's parameters each pruning group owns, by name pattern."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Mapping, Optional, Sequence

from torch import nn


def select_group_parameters(
    model: nn.Module,
    patterns_by_group: Mapping[str, Sequence[str]],
    matrices_only: Optional[Mapping[str, bool]] = None,
) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """The (name, parameter) pairs of each group, in `model.named_parameters()` order.

    A name belongs to a group when it matches one of the group's fnmatch patterns
    (case-sensitive) and, where `matrices_only[group]` (default True), the parameter has at
    least 2 dimensions (biases and batch-norm vectors are skipped). Raises ValueError when a
    group has no pattern, when a group matches no parameter, or when a parameter is matched by
    two groups.
    """
    named = list(model.named_parameters())
    selected: dict[str, list[tuple[str, nn.Parameter]]] = {}
    owner: dict[str, str] = {}
    for group, patterns in patterns_by_group.items():
        if not patterns:
            raise ValueError(f"pruning.groups.{group}.patterns is empty: give at least one glob, e.g. ['*weight_hh*'].")
        min_dims = 2 if (matrices_only or {}).get(group, True) else 0
        members = [
            (name, p)
            for name, p in named
            if p.dim() >= min_dims and any(fnmatchcase(name, pattern) for pattern in patterns)
        ]
        if not members:
            sample = ", ".join(name for name, _ in named[:8])
            raise ValueError(
                f"pruning.groups.{group}.patterns={list(patterns)} match no parameter of the model"
                f"{' with >= 2 dimensions (matrices_only=true)' if min_dims else ''}; "
                f"its parameters are named like: {sample}"
            )
        for name, _ in members:
            if name in owner:
                raise ValueError(
                    f"pruning.groups.{group}.patterns: parameter {name!r} is already in group "
                    f"{owner[name]!r}; a parameter may belong to one group only, narrow the patterns."
                )
            owner[name] = group
        selected[group] = members
    return selected
