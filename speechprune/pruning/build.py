"""Build a `Pruner` from the `pruning` config, checking that every schedule can work."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from speechprune.pruning.baseline import load_baseline_weights
from speechprune.pruning.groups import select_group_parameters
from speechprune.pruning.methods import METHODS, THRESHOLD_METHODS, PrunedGroup, PrunedMatrix, derive_slopes
from speechprune.pruning.pruner import Pruner
from speechprune.pruning.schedules import GroupSchedule, has_threshold_update, resolve_itr

# Methods whose final pruning happens at end_itr, so end_itr must be a step of the run.
_CUT_AT_END = ("gradual", "oneshot", "l1")


def build_pruner(model: nn.Module, cfg: Any, total_steps: int, steps_per_epoch: int) -> Optional[Pruner]:
    """The pruner for `model` described by `cfg` (a PruningConfig or its DictConfig), or None
    when `cfg.method == "none"`.

    `total_steps` is the number of optimizer steps of the whole run and `steps_per_epoch` the
    steps in one epoch; they turn "25%" and "1 epoch" into steps. Raises ValueError naming the
    key (e.g. "pruning.groups.recurrent.ramp_itr") for a schedule that cannot work, and
    FileNotFoundError for a missing baseline.
    """
    method = cfg.method
    if method not in METHODS:
        raise ValueError(f"pruning.method={method!r}: unknown method; choose one of {', '.join(METHODS)}.")
    if method == "none":
        return None
    if total_steps < 1 or steps_per_epoch < 1:
        raise ValueError(f"build_pruner: total_steps={total_steps} and steps_per_epoch={steps_per_epoch} must be >= 1.")
    if not cfg.groups:
        raise ValueError(f"pruning.groups is empty: pruning.method={method!r} needs at least one layer group.")
    block_shape = _block_shape(cfg) if method == "block" else (1, 1)
    if method == "l1" and cfg.l1_strength < 0:
        raise ValueError(f"pruning.l1_strength={cfg.l1_strength}: must be >= 0.")

    members = select_group_parameters(
        model,
        {name: list(g.patterns) for name, g in cfg.groups.items()},
        {name: bool(g.matrices_only) for name, g in cfg.groups.items()},
    )
    groups = []
    for name, group_cfg in cfg.groups.items():
        schedule = resolve_group_schedule(name, group_cfg, method, total_steps, steps_per_epoch)
        _check_group_settings(name, group_cfg, method)
        group = PrunedGroup(
            name=name,
            schedule=schedule,
            matrices=[
                PrunedMatrix(name=pname, param=param, mask=torch.ones_like(param, dtype=torch.bool))
                for pname, param in members[name]
            ],
            percentile=float(group_cfg.percentile),
            ramp_multiplier=float(group_cfg.ramp_multiplier),
            initial_sparsity=float(group_cfg.initial_sparsity),
            target_sparsity=float(group_cfg.target_sparsity),
            block_shape=block_shape,
        )
        if method in THRESHOLD_METHODS:
            _set_slopes(group, group_cfg, cfg.baseline, use_blocks=method == "block")
        groups.append(group)
    return Pruner(model, method, groups, l1_strength=float(cfg.l1_strength))


def resolve_group_schedule(
    name: str, group_cfg: Any, method: str, total_steps: int, steps_per_epoch: int
) -> GroupSchedule:
    """The group's iterations in steps, checked for order and range against the run."""
    key = f"pruning.groups.{name}"
    start = resolve_itr(group_cfg.start_itr, f"{key}.start_itr", total_steps, steps_per_epoch)
    ramp = resolve_itr(group_cfg.ramp_itr, f"{key}.ramp_itr", total_steps, steps_per_epoch)
    end = resolve_itr(group_cfg.end_itr, f"{key}.end_itr", total_steps, steps_per_epoch)
    freq = int(group_cfg.freq)
    if freq < 1:
        raise ValueError(f"{key}.freq={group_cfg.freq}: must be >= 1 step.")
    if end > total_steps:
        raise ValueError(
            f"{key}.end_itr={group_cfg.end_itr!r} ({end} steps): past the end of training "
            f"(total_steps={total_steps}); use a percentage such as '50%'."
        )
    if method in _CUT_AT_END and end >= total_steps:
        raise ValueError(
            f"{key}.end_itr={group_cfg.end_itr!r} ({end} steps): pruning.method={method!r} prunes at end_itr, "
            f"which must be a step of the run (< total_steps={total_steps})."
        )
    if method in THRESHOLD_METHODS:
        if ramp < start:
            raise ValueError(
                f"{key}.ramp_itr={group_cfg.ramp_itr!r} ({ramp} steps): ramp must not come before "
                f"start_itr={group_cfg.start_itr!r} ({start} steps)."
            )
        if end < ramp:
            raise ValueError(
                f"{key}.end_itr={group_cfg.end_itr!r} ({end} steps): end must not come before "
                f"ramp_itr={group_cfg.ramp_itr!r} ({ramp} steps)."
            )
    elif end < start:
        raise ValueError(
            f"{key}.end_itr={group_cfg.end_itr!r} ({end} steps): end must not come before "
            f"start_itr={group_cfg.start_itr!r} ({start} steps)."
        )
    schedule = GroupSchedule(start_itr=start, ramp_itr=ramp, end_itr=end, freq=freq)
    if method in THRESHOLD_METHODS and not has_threshold_update(schedule):
        raise ValueError(
            f"{key}.freq={freq}: no multiple of freq lies strictly between start_itr ({start}) and "
            f"end_itr ({end}), so the threshold would never be updated; lower freq or widen the schedule."
        )
    return schedule


def _check_group_settings(name: str, group_cfg: Any, method: str) -> None:
    key = f"pruning.groups.{name}"
    for slope_key in ("start_slope", "ramp_slope"):
        value = getattr(group_cfg, slope_key)
        if value is not None and value < 0:
            raise ValueError(f"{key}.{slope_key}={value}: a slope must be >= 0 (|w| per freq steps), or null to derive it.")
    if group_cfg.ramp_multiplier < 0:
        raise ValueError(f"{key}.ramp_multiplier={group_cfg.ramp_multiplier}: must be >= 0 (the paper uses 1.5 to 2).")
    if not 0 < group_cfg.percentile <= 100:
        raise ValueError(f"{key}.percentile={group_cfg.percentile}: must be in (0, 100].")
    if group_cfg.ramp_slope is not None and group_cfg.start_slope is None and method in THRESHOLD_METHODS:
        raise ValueError(f"{key}.ramp_slope={group_cfg.ramp_slope}: give start_slope too, or neither to derive both.")
    if not 0 <= group_cfg.target_sparsity < 1:
        raise ValueError(f"{key}.target_sparsity={group_cfg.target_sparsity}: must be in [0, 1).")
    if not 0 <= group_cfg.initial_sparsity <= group_cfg.target_sparsity:
        raise ValueError(
            f"{key}.initial_sparsity={group_cfg.initial_sparsity}: must be in [0, target_sparsity={group_cfg.target_sparsity}]."
        )


def _block_shape(cfg: Any) -> tuple[int, int]:
    shape = list(cfg.block_shape)
    if len(shape) != 2 or any(int(s) < 1 for s in shape):
        raise ValueError(f"pruning.block_shape={shape}: must be two positive integers [rows, columns], e.g. [4, 4].")
    return int(shape[0]), int(shape[1])


def _set_slopes(group: PrunedGroup, group_cfg: Any, baseline: Optional[str], use_blocks: bool) -> None:
    if group_cfg.start_slope is not None:
        theta = float(group_cfg.start_slope)
        phi = float(group_cfg.ramp_slope) if group_cfg.ramp_slope is not None else group.ramp_multiplier * theta
        for matrix in group.matrices:
            matrix.start_slope, matrix.ramp_slope = theta, phi
        group.slopes_from = "config"
    elif baseline:
        params = [(m.name, m.param) for m in group.matrices]
        weights = load_baseline_weights(baseline, params)
        derive_slopes(group, [weights[m.name] for m in group.matrices], use_blocks)
        group.slopes_from = "baseline"
    # Otherwise the slopes are derived from the model's weights when training reaches start_itr.
