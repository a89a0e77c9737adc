"""narang: Narang et al. 2017, weights with |w| <= a threshold rising with two slopes are pruned.

Every `freq` steps strictly between start_itr and end_itr the threshold is
theta * (itr - start + 1) / freq before ramp_itr and rises by phi per freq steps from it
(schedules.narang_threshold); the slopes come from the config, or from Eq. 1 on the
`percentile` of |w| of the baseline run (or of the model's own weights at start_itr).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from speechprune.config import PruningConfig, PruningGroupConfig
from speechprune.pruning.baseline import load_baseline_weights
from speechprune.pruning.magnitude import block_max_magnitude, expand_block_mask, percentile
from speechprune.pruning.pruner import PrunedGroup, Pruner, register_method, require_order
from speechprune.pruning.schedules import (
    GroupSchedule,
    eq1_start_slope,
    has_threshold_update,
    is_threshold_update,
    narang_threshold,
)


@dataclass
class NarangGroupConfig(PruningGroupConfig):
    """The threshold rises from `start_itr`, faster from `ramp_itr`, and the masks freeze at
    `end_itr`; it is updated every `freq` steps."""

    ramp_itr: str = "25%"  # the paper's: ramp at 25% of training
    freq: int = 100  # steps between threshold updates (shrink it on tiny corpora)
    # Slopes (theta, phi) of the threshold in |w| per `freq` steps. null: derived per weight
    # matrix with Eq. 1 from the `percentile` of |w| (of the baseline run's weights, or of the
    # model's own weights at `start_itr` when no baseline is given).
    start_slope: Optional[float] = None
    ramp_slope: Optional[float] = None  # null: ramp_multiplier * start_slope
    ramp_multiplier: float = 1.5
    percentile: float = 90.0


@dataclass
class NarangConfig(PruningConfig):
    method: str = "narang"
    groups: dict[str, NarangGroupConfig] = field(default_factory=dict)


@register_method
class NarangPruner(Pruner):
    name = "narang"
    config_class = NarangConfig
    schedule_keys = ("start_itr", "ramp_itr", "end_itr", "freq")

    def block_shape(self) -> Optional[tuple[int, int]]:
        """(rows, columns) of the blocks compared to the threshold; None: single entries."""
        return None

    @classmethod
    def check_schedule(cls, key: str, group_cfg: Any, schedule: GroupSchedule) -> None:
        require_order(key, group_cfg, schedule, "start_itr", "ramp_itr")
        require_order(key, group_cfg, schedule, "ramp_itr", "end_itr")
        if not has_threshold_update(schedule):
            raise ValueError(
                f"{key}.freq={schedule.freq}: no multiple of freq lies strictly between start_itr ({schedule.start_itr}) and "
                f"end_itr ({schedule.end_itr}), so the threshold would never be updated; lower freq or widen the schedule."
            )

    @classmethod
    def check_group(cls, key: str, group_cfg: Any, schedule: GroupSchedule) -> None:
        for slope_key in ("start_slope", "ramp_slope"):
            value = getattr(group_cfg, slope_key)
            if value is not None and value < 0:
                raise ValueError(f"{key}.{slope_key}={value}: a slope must be >= 0 (|w| per freq steps), or null to derive it.")
        if group_cfg.ramp_multiplier < 0:
            raise ValueError(f"{key}.ramp_multiplier={group_cfg.ramp_multiplier}: must be >= 0 (the paper uses 1.5 to 2).")
        if not 0 < group_cfg.percentile <= 100:
            raise ValueError(f"{key}.percentile={group_cfg.percentile}: must be in (0, 100].")
        if group_cfg.ramp_slope is not None and group_cfg.start_slope is None:
            raise ValueError(f"{key}.ramp_slope={group_cfg.ramp_slope}: give start_slope too, or neither to derive both.")

    def prepare(self, baseline: Optional[str]) -> None:
        """The slopes: from the config, else from the baseline's weights; otherwise they are
        derived from the model's weights when training reaches start_itr."""
        for group in self.groups:
            settings = group.settings
            if settings.start_slope is not None:
                theta = float(settings.start_slope)
                phi = float(settings.ramp_slope) if settings.ramp_slope is not None else float(settings.ramp_multiplier) * theta
                for matrix in group.matrices:
                    matrix.start_slope, matrix.ramp_slope = theta, phi
                group.slopes_from = "config"
            elif baseline:
                weights = load_baseline_weights(baseline, [(m.name, m.param) for m in group.matrices])
                self.derive_slopes(group, [weights[m.name] for m in group.matrices])
                group.slopes_from = "baseline"

    def derive_slopes(self, group: PrunedGroup, weights: list[torch.Tensor]) -> None:
        """Fill each matrix's q, theta (Eq. 1) and phi = ramp_multiplier * theta from `weights`.

        `weights` are aligned with `group.matrices` (the baseline's, or the model's own). For block
        pruning q is the percentile of the block maxima, the quantity the threshold is compared to.
        """
        blocks = self.block_shape()
        multiplier = float(group.settings.ramp_multiplier)
        for matrix, weight in zip(group.matrices, weights):
            magnitudes = block_max_magnitude(weight, blocks) if blocks else weight.detach().abs()
            matrix.q = percentile(magnitudes, float(group.settings.percentile))
            matrix.start_slope = eq1_start_slope(matrix.q, group.schedule, multiplier)
            matrix.ramp_slope = multiplier * matrix.start_slope

    def update_group(self, group: PrunedGroup, itr: int) -> None:
        """On update steps, prune entries (or blocks) with |w| <= the threshold."""
        # Without a baseline, q is measured on the model's own weights once training reaches start_itr.
        if group.matrices[0].start_slope is None and itr >= group.schedule.start_itr:
            self.derive_slopes(group, [m.param for m in group.matrices])
            group.slopes_from = "model"
        if not is_threshold_update(itr, group.schedule):
            return
        blocks = self.block_shape()
        for matrix in group.matrices:
            eps = narang_threshold(itr, group.schedule, matrix.start_slope, matrix.ramp_slope)
            matrix.threshold = eps
            weight = matrix.param.detach()
            if blocks:
                keep = expand_block_mask(block_max_magnitude(weight, blocks) > eps, weight, blocks)
            else:
                keep = weight.abs() > eps
            matrix.mask &= keep
        group.pruned_once = True

    def group_scalars(self, group: PrunedGroup) -> dict[str, float]:
        """"threshold/<group>": the mean over its matrices of the last threshold (|w|), and
        "threshold/<param name>" per matrix."""
        values = {f"threshold/{group.name}": sum(m.threshold for m in group.matrices) / len(group.matrices)}
        values.update({f"threshold/{m.name}": m.threshold for m in group.matrices})
        return values
