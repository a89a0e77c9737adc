"""oneshot: hard pruning (Han et al. 2015): train dense, cut each matrix to `target_sparsity`
(its smallest |w|) once, at the first step at or after end_itr, then train on with the masks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from speechprune.config import PruningConfig, PruningGroupConfig
from speechprune.pruning.pruner import PrunedGroup, Pruner, cut_to, register_method
from speechprune.pruning.schedules import GroupSchedule


@dataclass
class OneshotGroupConfig(PruningGroupConfig):
    """The cut at `end_itr`; `start_itr` only bounds it (end_itr must not come before it)."""

    target_sparsity: float = 0.9  # fraction of each matrix's entries pruned (0 <= s < 1)


@dataclass
class OneshotConfig(PruningConfig):
    method: str = "oneshot"
    groups: dict[str, OneshotGroupConfig] = field(default_factory=dict)


def check_target_sparsity(key: str, group_cfg: Any) -> None:
    if not 0 <= group_cfg.target_sparsity < 1:
        raise ValueError(f"{key}.target_sparsity={group_cfg.target_sparsity}: must be in [0, 1).")


@register_method
class OneshotPruner(Pruner):
    name = "oneshot"
    config_class = OneshotConfig
    prunes_at_end = True
    schedule_keys = ("start_itr", "end_itr")

    @classmethod
    def check_group(cls, key: str, group_cfg: Any, schedule: GroupSchedule) -> None:
        check_target_sparsity(key, group_cfg)

    def update_group(self, group: PrunedGroup, itr: int) -> None:
        if not group.cut_done and itr >= group.schedule.end_itr:
            cut_to(group, float(group.settings.target_sparsity))
            group.cut_done = True
