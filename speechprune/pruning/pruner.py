"""The pruner: masks beside the model, updated on schedule and applied after every step.

    pruner = build_pruner(model, cfg.pruning, total_steps, steps_per_epoch)   # None: dense
    loss = ctc_loss + pruner.regularization()
    loss.backward(); clip; optimizer.step()
    pruner.step(itr)          # itr: 0-based index of the optimizer step just taken

`Pruner` is the base class of every pruning method (speechprune/pruning/methods/): it owns the
groups, applies the masks and saves and restores them; a method says how one group's masks
change at a step (`update_group`) and may add a penalty to the loss (`regularization`).
Methods are registered by name with `register_method`, which also puts their typed configs in
Hydra's ConfigStore as `pruning/<name>_schema`.

The model knows nothing of the pruner and no forward hooks are used: multiplying the weights by
their masks in place after the optimizer step is enough to keep pruned weights at exactly zero
whatever the optimizer's momentum or weight decay does. Masks are computed from the weights only
(no randomness), so under DistributedDataParallel they stay identical on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

import torch
from hydra.core.config_store import ConfigStore
from torch import nn

from speechprune.config import PruningConfig
from speechprune.pruning.magnitude import prune_smallest
from speechprune.pruning.report import sparsity_report
from speechprune.pruning.schedules import GroupSchedule

# 2: a schedule entry a method has no key for (gradual's ramp_itr, oneshot's freq...) is saved
# as null. Version 1 saved every entry; those a method has no key for are not compared on load.
STATE_VERSION = 2
READABLE_STATE_VERSIONS = (1, 2)
SCHEDULE_KEYS = ("start_itr", "ramp_itr", "end_itr", "freq")  # the order of "schedule" in the state


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
    """A layer group: its matrices, resolved schedule and its group config (`settings`: the
    method's group dataclass, whose defaults live only in the schema)."""

    name: str
    schedule: GroupSchedule
    matrices: list[PrunedMatrix]
    settings: Any
    current_target: float = 0.0  # gradual/oneshot/l1: the sparsity the masks were last cut to
    pruned_once: bool = False  # any mask has lost an entry: masks must be applied every step
    cut_done: bool = False  # oneshot/l1: the single cut has been taken
    slopes_from: str = field(default="config")  # "config", "baseline" or "model"


def cut_to(group: PrunedGroup, sparsity: float) -> None:
    """Prune each matrix of `group` to `sparsity` (its smallest |w|, fraction of entries)."""
    for matrix in group.matrices:
        matrix.mask = prune_smallest(matrix.param, matrix.mask, sparsity)
    group.current_target = sparsity
    group.pruned_once = True


class Pruner:
    """Masks, thresholds and schedule position of every pruned group of one model.

    Subclasses (one per method) set `name`, `config_class` (a PruningConfig subclass holding
    only the keys the method reads), `schedule_keys` (the iteration keys of its group config)
    and implement `update_group`.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[PruningConfig]]
    schedule_keys: ClassVar[tuple[str, ...]]
    # Where runs have shown the prediction (pruning/predict.py) to be biased: how to read it.
    prediction_caveat: ClassVar[str] = ""
    # The method prunes at end_itr itself, so end_itr must be a step of the run.
    prunes_at_end: ClassVar[bool] = False

    def __init__(self, model: nn.Module, groups: list[PrunedGroup], cfg: Any):
        self.model = model
        self.groups = groups
        self.cfg = cfg
        self.last_itr = -1  # the last optimizer step seen by `step`; -1 before the first

    # ---- what a method defines -------------------------------------------------------------

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """Raise ValueError naming the key for a method-wide setting that cannot work."""

    @classmethod
    def check_schedule(cls, key: str, group_cfg: Any, schedule: GroupSchedule) -> None:
        """Raise ValueError naming `key`.<iteration> for a schedule (in steps) out of order."""
        require_order(key, group_cfg, schedule, "start_itr", "end_itr")

    @classmethod
    def check_group(cls, key: str, group_cfg: Any, schedule: GroupSchedule) -> None:
        """Raise ValueError naming `key`.<setting> for a group setting that cannot work."""

    def prepare(self, baseline: Optional[str]) -> None:
        """Once, after the groups are built: e.g. the threshold slopes from the baseline run."""

    def update_group(self, group: PrunedGroup, itr: int) -> None:
        """Remove entries from `group`'s masks at step `itr` (mask AND new rule), if due."""
        raise NotImplementedError

    def regularization(self) -> torch.Tensor | float:
        """The penalty to add to the loss of the step about to be taken (0.0: none)."""
        return 0.0

    def group_scalars(self, group: PrunedGroup) -> dict[str, float]:
        """Method-specific values of one group for `scalars`: the sparsity last cut to."""
        return {f"target_sparsity/{group.name}": group.current_target}

    # ---- the training loop's calls --------------------------------------------------------

    @torch.no_grad()
    def step(self, itr: int) -> None:
        """After optimizer step `itr` (0-based over the run): update masks when the schedule
        says so, then zero every pruned weight in place."""
        for group in self.groups:
            self.update_group(group, itr)
        self.apply_masks()
        self.last_itr = itr

    @property
    def masks_final(self) -> bool:
        """Every group is past its end_itr: no method changes a mask after that step (narang and
        block stop updating, gradual cuts for the last time at end_itr, oneshot and l1 cut at it)."""
        return all(self.last_itr >= group.schedule.end_itr for group in self.groups)

    @torch.no_grad()
    def apply_masks(self) -> None:
        """w *= mask for every matrix of every group that has pruned anything yet."""
        for group in self.groups:
            if group.pruned_once:
                for matrix in group.matrices:
                    matrix.param.mul_(matrix.mask)

    # ---- checkpointing ---------------------------------------------------------------------

    def _schedule_entries(self, schedule: GroupSchedule) -> list[Optional[int]]:
        return [getattr(schedule, key) if key in self.schedule_keys else None for key in SCHEDULE_KEYS]

    def state_dict(self) -> dict[str, Any]:
        """Masks (bool, CPU), thresholds, q, slopes and the schedule position; torch.save-able
        and loadable with weights_only=True.

        {"version": 2, "method": name, "last_itr": int, "groups": {group: {"schedule": [start,
        ramp, end, freq] in steps (null where the method has no such key), "current_target",
        "pruned_once", "cut_done", "slopes_from", "matrices": {param name: {"mask", "threshold",
        "q", "start_slope", "ramp_slope"}}}}}. Version 1 is the same with every schedule entry set.
        """
        return {
            "version": STATE_VERSION,
            "method": self.name,
            "last_itr": self.last_itr,
            "groups": {
                group.name: {
                    "schedule": self._schedule_entries(group.schedule),
                    "current_target": group.current_target,
                    "pruned_once": group.pruned_once,
                    "cut_done": group.cut_done,
                    "slopes_from": group.slopes_from,
                    "matrices": {
                        m.name: {
                            "mask": m.mask.detach().cpu().clone(),
                            "threshold": m.threshold,
                            "q": m.q,
                            "start_slope": m.start_slope,
                            "ramp_slope": m.ramp_slope,
                        }
                        for m in group.matrices
                    },
                }
                for group in self.groups
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` (version 1 or 2); the pruner must have been built with the
        same method and groups. Masks are moved to each parameter's device and applied."""
        if state.get("version", 1) not in READABLE_STATE_VERSIONS:
            raise ValueError(f"pruner state version {state.get('version')!r}: this speechprune reads "
                             f"versions {', '.join(map(str, READABLE_STATE_VERSIONS))}.")
        if state.get("method") != self.name:
            raise ValueError(
                f"pruner state is for method {state.get('method')!r} but this run uses pruning.method={self.name!r}."
            )
        saved_groups = state["groups"]
        if set(saved_groups) != {g.name for g in self.groups}:
            raise ValueError(
                f"pruner state has groups {sorted(saved_groups)} but pruning.groups has {sorted(g.name for g in self.groups)}."
            )
        for group in self.groups:
            self._load_group(group, saved_groups[group.name])
        self.last_itr = state["last_itr"]
        self.apply_masks()

    def _load_group(self, group: PrunedGroup, saved: dict[str, Any]) -> None:
        if set(saved["matrices"]) != {m.name for m in group.matrices}:
            raise ValueError(
                f"pruner state of group {group.name!r} holds {sorted(saved['matrices'])}, "
                f"but the group now selects {sorted(m.name for m in group.matrices)}."
            )
        now = self._schedule_entries(group.schedule)
        # Entries the method has no key for are null now; a version 1 state holds a number there.
        then = [value if mine is not None else None for value, mine in zip(saved["schedule"], now)]
        if then != now:
            shown = lambda entries: [e for e in entries if e is not None]  # noqa: E731
            raise ValueError(
                f"pruner state of group {group.name!r} was saved with ({', '.join(self.schedule_keys)}) = "
                f"{shown(then)} steps, but pruning.groups.{group.name} now resolves to {shown(now)}: "
                "the run's total steps or the schedule changed; resume with the original settings."
            )
        group.current_target = saved["current_target"]
        group.pruned_once = saved["pruned_once"]
        group.cut_done = saved["cut_done"]
        group.slopes_from = saved["slopes_from"]
        for matrix in group.matrices:
            entry = saved["matrices"][matrix.name]
            if tuple(entry["mask"].shape) != tuple(matrix.param.shape):
                raise ValueError(
                    f"pruner state: mask of {matrix.name!r} has shape {tuple(entry['mask'].shape)}, "
                    f"the parameter {tuple(matrix.param.shape)}."
                )
            matrix.mask = entry["mask"].to(device=matrix.param.device, dtype=torch.bool)
            matrix.threshold = entry["threshold"]
            matrix.q = entry["q"]
            matrix.start_slope = entry["start_slope"]
            matrix.ramp_slope = entry["ramp_slope"]

    @torch.no_grad()
    def masks_and_thresholds(self) -> dict[str, torch.Tensor]:
        """What distributed ranks must hold bitwise alike: every matrix's mask (bool, the
        parameter's shape) under its parameter name, and its last threshold (|w|, a float64
        scalar) under "<name>:threshold"."""
        tensors = {}
        for group in self.groups:
            for m in group.matrices:
                tensors[m.name] = m.mask
                tensors[f"{m.name}:threshold"] = torch.tensor(m.threshold, dtype=torch.float64)
        return tensors

    # ---- logging ---------------------------------------------------------------------------

    def group_of_parameter(self) -> dict[str, str]:
        """Parameter name -> the group that prunes it."""
        return {m.name: g.name for g in self.groups for m in g.matrices}

    @torch.no_grad()
    def scalars(self) -> dict[str, float]:
        """Values for TensorBoard and metrics.json.

        "sparsity/<group>" and "sparsity/<param name>": fraction of entries the masks prune;
        the method's `group_scalars` ("threshold/<group>" and "threshold/<param name>" for
        narang and block, "target_sparsity/<group>" for the others); plus the model-level
        counts of `sparsity_report`.
        """
        values: dict[str, float] = {}
        for group in self.groups:
            pruned = sum(int((~m.mask).sum().item()) for m in group.matrices)
            numel = sum(m.mask.numel() for m in group.matrices)
            values[f"sparsity/{group.name}"] = pruned / numel
            for m in group.matrices:
                values[f"sparsity/{m.name}"] = float((~m.mask).sum().item()) / m.mask.numel()
            values.update(self.group_scalars(group))
        values.update(sparsity_report(self.model, self).scalars())
        return values

    @torch.no_grad()
    def magnitudes(self) -> dict[str, torch.Tensor]:
        """|w| of every entry of each group's weights (pruned ones are 0), flattened, float32 on CPU."""
        return {
            group.name: torch.cat([m.param.detach().abs().flatten().float().cpu() for m in group.matrices])
            for group in self.groups
        }


# ---- the registry --------------------------------------------------------------------------

METHODS: dict[str, type[Pruner]] = {}


def require_order(key: str, group_cfg: Any, schedule: GroupSchedule, earlier: str, later: str) -> None:
    """Raise ValueError naming `key`.<later> when the iteration `later` (e.g. "end_itr") comes
    before `earlier` in steps; the message shows both as written and in steps."""
    first, then = getattr(schedule, earlier), getattr(schedule, later)
    if then < first:
        raise ValueError(
            f"{key}.{later}={getattr(group_cfg, later)!r} ({then} steps): {later.removesuffix('_itr')} must not "
            f"come before {earlier}={getattr(group_cfg, earlier)!r} ({first} steps)."
        )


def register_method(cls: type[Pruner]) -> type[Pruner]:
    """Class decorator: make `cls` the method `pruning.method=<cls.name>` builds, and its config
    the schema `pruning/<name>_schema` in Hydra's ConfigStore (conf/pruning/<name>.yaml names
    it in its defaults list)."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"pruning method {cls.name!r} is registered twice ({METHODS[cls.name].__module__}, {cls.__module__}).")
    METHODS[cls.name] = cls
    _store_config(cls)
    return cls


def _store_config(cls: type[Pruner]) -> None:
    ConfigStore.instance().store(group="pruning", name=f"{cls.name}_schema", node=cls.config_class)


def register_method_configs() -> None:
    """Every registered method's schema in Hydra's ConfigStore again: what a command calls
    next to `speechprune.config.register_configs()` before composing (a test may have
    replaced the ConfigStore's entries since the methods were imported)."""
    for cls in METHODS.values():
        _store_config(cls)
