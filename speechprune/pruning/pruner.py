"""The pruner: masks beside the model, updated on schedule and applied after every step.

    pruner = build_pruner(model, cfg.pruning, total_steps, steps_per_epoch)   # None: dense
    loss = ctc_loss + pruner.regularization()
    loss.backward(); clip; optimizer.step()
    pruner.step(itr)          # itr: 0-based index of the optimizer step just taken

The model knows nothing of the pruner and no forward hooks are used: multiplying the weights by
their masks in place after the optimizer step is enough to keep pruned weights at exactly zero
whatever the optimizer's momentum or weight decay does. Masks are computed from the weights only
(no randomness), so under DistributedDataParallel they stay identical on every rank.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from speechprune.pruning.methods import THRESHOLD_METHODS, UPDATE_RULES, PrunedGroup, l1_penalty
from speechprune.pruning.report import sparsity_report

STATE_VERSION = 1


class Pruner:
    """Masks, thresholds and schedule position of every pruned group of one model."""

    def __init__(self, model: nn.Module, method: str, groups: list[PrunedGroup], l1_strength: float = 0.0):
        self.model = model
        self.method = method
        self.groups = groups
        self.l1_strength = l1_strength
        self.last_itr = -1  # the last optimizer step seen by `step`; -1 before the first

    # ---- the training loop's calls --------------------------------------------------------

    def regularization(self) -> torch.Tensor | float:
        """The penalty to add to the loss of the step about to be taken (l1 only; else 0.0)."""
        if self.method != "l1":
            return 0.0
        return l1_penalty(self.groups, self.last_itr + 1, self.l1_strength)

    @torch.no_grad()
    def step(self, itr: int) -> None:
        """After optimizer step `itr` (0-based over the run): update masks when the schedule
        says so, then zero every pruned weight in place."""
        update = UPDATE_RULES[self.method]
        for group in self.groups:
            update(group, itr)
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

    def state_dict(self) -> dict[str, Any]:
        """Masks (bool, CPU), thresholds, q, slopes and the schedule position; torch.save-able
        and loadable with weights_only=True."""
        return {
            "version": STATE_VERSION,
            "method": self.method,
            "last_itr": self.last_itr,
            "groups": {
                group.name: {
                    "schedule": [group.schedule.start_itr, group.schedule.ramp_itr, group.schedule.end_itr, group.schedule.freq],
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
        """Restore a `state_dict()`; the pruner must have been built with the same method and
        groups. Masks are moved to each parameter's device and applied to the weights."""
        if state.get("method") != self.method:
            raise ValueError(
                f"pruner state is for method {state.get('method')!r} but this run uses pruning.method={self.method!r}."
            )
        saved_groups = state["groups"]
        if set(saved_groups) != {g.name for g in self.groups}:
            raise ValueError(
                f"pruner state has groups {sorted(saved_groups)} but pruning.groups has {sorted(g.name for g in self.groups)}."
            )
        for group in self.groups:
            saved = saved_groups[group.name]
            if set(saved["matrices"]) != {m.name for m in group.matrices}:
                raise ValueError(
                    f"pruner state of group {group.name!r} holds {sorted(saved['matrices'])}, "
                    f"but the group now selects {sorted(m.name for m in group.matrices)}."
                )
            schedule = group.schedule
            now = [schedule.start_itr, schedule.ramp_itr, schedule.end_itr, schedule.freq]
            if list(saved["schedule"]) != now:
                raise ValueError(
                    f"pruner state of group {group.name!r} was saved with (start, ramp, end, freq) = "
                    f"{list(saved['schedule'])} steps, but pruning.groups.{group.name} now resolves to {now}: "
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
        self.last_itr = state["last_itr"]
        self.apply_masks()

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
        "threshold/<group>" (narang, block): mean over the group's matrices of the last threshold,
        with "threshold/<param name>" per matrix; "target_sparsity/<group>" (gradual, oneshot,
        l1): the sparsity last cut to; plus the model-level counts of `sparsity_report`.
        """
        values: dict[str, float] = {}
        for group in self.groups:
            pruned = sum(int((~m.mask).sum().item()) for m in group.matrices)
            numel = sum(m.mask.numel() for m in group.matrices)
            values[f"sparsity/{group.name}"] = pruned / numel
            for m in group.matrices:
                values[f"sparsity/{m.name}"] = float((~m.mask).sum().item()) / m.mask.numel()
            if self.method in THRESHOLD_METHODS:
                values[f"threshold/{group.name}"] = sum(m.threshold for m in group.matrices) / len(group.matrices)
                for m in group.matrices:
                    values[f"threshold/{m.name}"] = m.threshold
            else:
                values[f"target_sparsity/{group.name}"] = group.current_target
        values.update(sparsity_report(self.model, self).scalars())
        return values

    @torch.no_grad()
    def magnitudes(self) -> dict[str, torch.Tensor]:
        """|w| of every entry of each group's weights (pruned ones are 0), flattened, float32 on CPU."""
        return {
            group.name: torch.cat([m.param.detach().abs().flatten().float().cpu() for m in group.matrices])
            for group in self.groups
        }
