"""gradual: Zhu & Gupta 2017: every freq steps from start_itr (and at end_itr), each matrix's
smallest |w| are pruned up to s_t = s_f + (s_i - s_f) * (1 - (t - start_itr) / (end_itr -
start_itr))**3, with s_i = initial_sparsity and s_f = target_sparsity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from speechprune.config import PruningConfig
from speechprune.pruning.methods.oneshot import OneshotGroupConfig, check_target_sparsity
from speechprune.pruning.pruner import PrunedGroup, Pruner, cut_to, register_method
from speechprune.pruning.schedules import GroupSchedule, cubic_sparsity, is_sparsity_update


@dataclass
class GradualGroupConfig(OneshotGroupConfig):
    """Sparsity rises on the cubic curve from `initial_sparsity` at `start_itr` to
    `target_sparsity` at `end_itr`, updated every `freq` steps."""

    freq: int = 100  # steps between sparsity updates (shrink it on tiny corpora)
    initial_sparsity: float = 0.0


@dataclass
class GradualConfig(PruningConfig):
    method: str = "gradual"
    groups: dict[str, GradualGroupConfig] = field(default_factory=dict)


@register_method
class GradualPruner(Pruner):
    name = "gradual"
    config_class = GradualConfig
    prunes_at_end = True
    schedule_keys = ("start_itr", "end_itr", "freq")

    @classmethod
    def check_group(cls, key: str, group_cfg: Any, schedule: GroupSchedule) -> None:
        check_target_sparsity(key, group_cfg)
        if not 0 <= group_cfg.initial_sparsity <= group_cfg.target_sparsity:
            raise ValueError(
                f"{key}.initial_sparsity={group_cfg.initial_sparsity}: must be in [0, target_sparsity={group_cfg.target_sparsity}]."
            )

    def update_group(self, group: PrunedGroup, itr: int) -> None:
        if is_sparsity_update(itr, group.schedule):
            settings = group.settings
            cut_to(group, cubic_sparsity(itr, group.schedule, float(settings.initial_sparsity),
                                         float(settings.target_sparsity)))
