"""Build a `Pruner` from the `pruning` config, checking that every schedule can work."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

import speechprune.pruning.methods  # noqa: F401  (registers every method)
from speechprune.pruning.groups import select_group_parameters
from speechprune.pruning.pruner import METHODS, PrunedGroup, PrunedMatrix, Pruner
from speechprune.pruning.schedules import GroupSchedule, resolve_itr


def build_pruner(model: nn.Module, cfg: Any, total_steps: int, steps_per_epoch: int) -> Optional[Pruner]:
    """The pruner for `model` described by `cfg` (the method's config, e.g. NarangConfig, or
    its DictConfig), or None when `cfg.method == "none"`.

    `total_steps` is the number of optimizer steps of the whole run and `steps_per_epoch` the
    steps in one epoch; they turn "25%" and "1 epoch" into steps. Raises ValueError naming the
    key (e.g. "pruning.groups.recurrent.ramp_itr") for a schedule that cannot work, and
    FileNotFoundError for a missing baseline.
    """
    method = cfg.method
    if method == "none":
        return None
    if method not in METHODS:
        raise ValueError(f"pruning.method={method!r}: unknown method; choose one of none, {', '.join(METHODS)}.")
    if total_steps < 1 or steps_per_epoch < 1:
        raise ValueError(f"build_pruner: total_steps={total_steps} and steps_per_epoch={steps_per_epoch} must be >= 1.")
    method_class = METHODS[method]
    cfg = typed_config(cfg, method_class)
    if not cfg.groups:
        raise ValueError(f"pruning.groups is empty: pruning.method={method!r} needs at least one layer group.")
    method_class.check_config(cfg)

    members = select_group_parameters(
        model,
        {name: list(g.patterns) for name, g in cfg.groups.items()},
        {name: bool(g.matrices_only) for name, g in cfg.groups.items()},
    )
    groups = []
    for name, group_cfg in cfg.groups.items():
        schedule = resolve_group_schedule(name, group_cfg, method_class, total_steps, steps_per_epoch)
        method_class.check_group(f"pruning.groups.{name}", group_cfg, schedule)
        groups.append(PrunedGroup(
            name=name,
            schedule=schedule,
            matrices=[
                PrunedMatrix(name=pname, param=param, mask=torch.ones_like(param, dtype=torch.bool))
                for pname, param in members[name]
            ],
            settings=OmegaConf.to_object(group_cfg),
        ))
    pruner = method_class(model, groups, cfg)
    pruner.prepare(cfg.baseline)
    return pruner


def typed_config(cfg: Any, method_class: type[Pruner]) -> DictConfig:
    """`cfg` merged onto the method's schema (a dataclass or plain mapping becomes typed; a key
    the method does not read stops here). Refuses a config of another method's schema."""
    given = OmegaConf.get_type(cfg) if OmegaConf.is_config(cfg) else type(cfg)
    schema = method_class.config_class
    if isinstance(given, type) and given is not dict and not issubclass(given, schema):
        raise ValueError(
            f"pruning.method={method_class.name!r}, but the pruning settings are {given.__name__}'s: "
            f"select the method with pruning={method_class.name} rather than by pruning.method."
        )
    typed = OmegaConf.merge(OmegaConf.structured(schema), cfg)
    # Hydra's `+key=value` adds a key even to a typed node: refuse one the method does not read.
    group_schema = typing.get_type_hints(schema)["groups"].__args__[1]
    unknown = [f"pruning.{key}" for key in typed if key not in _fields(schema)] + [
        f"pruning.groups.{name}.{key}" for name, group in typed.groups.items()
        for key in group if key not in _fields(group_schema)]
    if unknown:
        raise ValueError(
            f"{unknown[0]}: pruning={method_class.name} has no such setting ({schema.__name__} holds "
            f"{', '.join(_fields(schema))}; each group {', '.join(_fields(group_schema))}); remove it, "
            "or choose the method that reads it."
        )
    return typed


def _fields(dataclass_type: type) -> list[str]:
    return [f.name for f in dataclasses.fields(dataclass_type)]


def resolve_group_schedule(
    name: str, group_cfg: Any, method_class: type[Pruner], total_steps: int, steps_per_epoch: int
) -> GroupSchedule:
    """The group's iterations in steps (those of the method's `schedule_keys`; None for the
    others), checked for range against the run and for order by the method."""
    key = f"pruning.groups.{name}"
    keys = method_class.schedule_keys
    steps = {
        itr_key: resolve_itr(getattr(group_cfg, itr_key), f"{key}.{itr_key}", total_steps, steps_per_epoch)
        if itr_key in keys else None
        for itr_key in ("start_itr", "ramp_itr", "end_itr")
    }
    freq = int(group_cfg.freq) if "freq" in keys else None
    if freq is not None and freq < 1:
        raise ValueError(f"{key}.freq={group_cfg.freq}: must be >= 1 step.")
    end = steps["end_itr"]
    if end > total_steps:
        raise ValueError(
            f"{key}.end_itr={group_cfg.end_itr!r} ({end} steps): past the end of training "
            f"(total_steps={total_steps}); use a percentage such as '50%'."
        )
    if method_class.prunes_at_end and end >= total_steps:
        raise ValueError(
            f"{key}.end_itr={group_cfg.end_itr!r} ({end} steps): pruning.method={method_class.name!r} prunes at end_itr, "
            f"which must be a step of the run (< total_steps={total_steps})."
        )
    schedule = GroupSchedule(freq=freq, **steps)
    method_class.check_schedule(key, group_cfg, schedule)
    return schedule
