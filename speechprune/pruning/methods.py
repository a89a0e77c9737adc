"""The pruning methods: how one group's masks change at step `itr`.

Each update rule takes a `PrunedGroup` and the 0-based optimizer step just taken, and may only
remove entries from masks (mask AND new rule). Applying the masks to the weights is the
pruner's job, after every step.

- narang: Narang et al. 2017, |w| <= a rising threshold (two slopes) is pruned.
- block:  Narang et al. 2017b, whole blocks whose largest |w| <= the same threshold.
- gradual: Zhu & Gupta 2017, the smallest |w| up to a cubic sparsity curve.
- oneshot: Han et al. 2015 / "hard pruning", the smallest |w| up to the target, once.
- l1: an L1 penalty during training (see `l1_penalty`), then the one-shot cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from speechprune.pruning.magnitude import block_max_magnitude, expand_block_mask, percentile, prune_smallest
from speechprune.pruning.schedules import (
    GroupSchedule,
    cubic_sparsity,
    eq1_start_slope,
    is_sparsity_update,
    is_threshold_update,
    narang_threshold,
)

METHODS = ("none", "narang", "gradual", "block", "l1", "oneshot")
THRESHOLD_METHODS = ("narang", "block")


@dataclass
class PrunedMatrix:
    """One pruned weight tensor and its state; `mask` is bool on the weight's device."""

    name: str
    param: nn.Parameter
    mask: torch.Tensor
    threshold: float = 0.0  # the last threshold applied (|w|); 0 before the first update
    q: Optional[float] = None  # percentile of |w| (of block maxima for block) behind Eq. 1
    start_slope: Optional[float] = None  # theta, |w| per freq steps
    ramp_slope: Optional[float] = None  # phi


@dataclass
class PrunedGroup:
    """A layer group: its matrices, resolved schedule and method settings (the settings come
    from the group's config, pruning/build.py; their defaults live only in the schema)."""

    name: str
    schedule: GroupSchedule
    matrices: list[PrunedMatrix]
    percentile: float
    ramp_multiplier: float
    initial_sparsity: float
    target_sparsity: float
    block_shape: tuple[int, int]
    current_target: float = 0.0  # gradual/oneshot/l1: the sparsity the masks were last cut to
    pruned_once: bool = False  # any mask has lost an entry: masks must be applied every step
    cut_done: bool = False  # oneshot/l1: the single cut has been taken
    slopes_from: str = field(default="config")  # "config", "baseline" or "model"


def derive_slopes(group: PrunedGroup, weights: list[torch.Tensor], use_blocks: bool) -> None:
    """Fill each matrix's q, theta (Eq. 1) and phi = ramp_multiplier * theta from `weights`.

    `weights` are aligned with `group.matrices` (the baseline's, or the model's own). For block
    pruning q is the percentile of the block maxima, the quantity the threshold is compared to.
    """
    for matrix, weight in zip(group.matrices, weights):
        magnitudes = block_max_magnitude(weight, group.block_shape) if use_blocks else weight.detach().abs()
        matrix.q = percentile(magnitudes, group.percentile)
        matrix.start_slope = eq1_start_slope(matrix.q, group.schedule, group.ramp_multiplier)
        matrix.ramp_slope = group.ramp_multiplier * matrix.start_slope


def _ensure_slopes(group: PrunedGroup, itr: int, use_blocks: bool) -> None:
    # Without a baseline, q is measured on the model's own weights once training reaches start_itr.
    if group.matrices[0].start_slope is None and itr >= group.schedule.start_itr:
        derive_slopes(group, [m.param for m in group.matrices], use_blocks)
        group.slopes_from = "model"


def update_threshold(group: PrunedGroup, itr: int, use_blocks: bool) -> None:
    """narang / block: on update steps, prune entries (or blocks) with |w| <= the threshold."""
    _ensure_slopes(group, itr, use_blocks)
    if not is_threshold_update(itr, group.schedule):
        return
    for matrix in group.matrices:
        eps = narang_threshold(itr, group.schedule, matrix.start_slope, matrix.ramp_slope)
        matrix.threshold = eps
        weight = matrix.param.detach()
        if use_blocks:
            keep_blocks = block_max_magnitude(weight, group.block_shape) > eps
            keep = expand_block_mask(keep_blocks, weight, group.block_shape)
        else:
            keep = weight.abs() > eps
        matrix.mask &= keep
    group.pruned_once = True


def update_narang(group: PrunedGroup, itr: int) -> None:
    update_threshold(group, itr, use_blocks=False)


def update_block(group: PrunedGroup, itr: int) -> None:
    update_threshold(group, itr, use_blocks=True)


def _cut_to(group: PrunedGroup, sparsity: float) -> None:
    for matrix in group.matrices:
        matrix.mask = prune_smallest(matrix.param, matrix.mask, sparsity)
    group.current_target = sparsity
    group.pruned_once = True


def update_gradual(group: PrunedGroup, itr: int) -> None:
    """Zhu & Gupta: every freq steps from start_itr, cut each matrix to the cubic s_t."""
    if is_sparsity_update(itr, group.schedule):
        _cut_to(group, cubic_sparsity(itr, group.schedule, group.initial_sparsity, group.target_sparsity))


def update_oneshot(group: PrunedGroup, itr: int) -> None:
    """One cut of each matrix to target_sparsity at end_itr (the first step at or after it)."""
    if not group.cut_done and itr >= group.schedule.end_itr:
        _cut_to(group, group.target_sparsity)
        group.cut_done = True


UPDATE_RULES = {
    "narang": update_narang,
    "block": update_block,
    "gradual": update_gradual,
    "oneshot": update_oneshot,
    "l1": update_oneshot,
}


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
