"""Predicting the final sparsity and parameter count of a pruning schedule before training.

The paper's reviewers asked for it; the final sparsity of threshold pruning is not fixed by the
schedule but depends on how the weights move while they are pruned. The prediction replays the
real schedule (the same `Pruner`, so the same formulas) on frozen weights: those of the dense
baseline run when `pruning.baseline` is given (the distribution Eq. 1 was calibrated on), else
the model's initial weights. `metrics.json` of every pruned run records the prediction next to
what was achieved, so the predictor's error stays visible.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speechprune.pruning.baseline import BASELINE_CHECKPOINT
from speechprune.pruning.build import build_pruner
from speechprune.pruning.report import sparsity_report


@dataclass
class Prediction:
    source: str  # whose weights the schedule was replayed on
    group_sparsity: dict[str, float] = field(default_factory=dict)
    group_params: dict[str, int] = field(default_factory=dict)
    total_params: int = 0
    nonzero_params: int = 0
    caveat: str = ""  # how far to trust it, where runs have shown a bias

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "params_total": self.total_params,
                "params_nonzero": self.nonzero_params,
                **{f"sparsity/{g}": s for g, s in self.group_sparsity.items()}}

    def table(self) -> str:
        lines = [f"predicted from {self.source}",
                 f"{'group':<12} {'parameters':>12} {'sparsity':>9} {'non-zero':>12}"]
        for group, sparsity in self.group_sparsity.items():
            params = self.group_params[group]
            lines.append(f"{group:<12} {params:>12,} {100 * sparsity:>8.1f}% "
                         f"{round(params * (1 - sparsity)):>12,}")
        lines.append(f"{'model':<12} {self.total_params:>12,} "
                     f"{100 * (1 - self.nonzero_params / self.total_params):>8.1f}% "
                     f"{self.nonzero_params:>12,}")
        if self.caveat:
            lines.append(f"note: {self.caveat}")
        return "\n".join(lines)


@torch.no_grad()
def predict_pruning(model: nn.Module, cfg: Any, total_steps: int, steps_per_epoch: int) -> Prediction:
    """Replay the schedule of `cfg` (a PruningConfig) over `total_steps` on frozen weights.

    `model` is not modified: a CPU copy is pruned."""
    shadow = copy.deepcopy(model).cpu()
    # Built first: it checks the baseline against the model with clear messages.
    pruner = build_pruner(shadow, cfg, total_steps, steps_per_epoch)
    if cfg.baseline:
        checkpoint = torch.load(Path(cfg.baseline) / BASELINE_CHECKPOINT, map_location="cpu",
                                weights_only=True)
        shadow.load_state_dict(checkpoint["model"])
        source = f"the weights of the baseline run {cfg.baseline}"
    else:
        source = "the model's initial weights (give pruning.baseline=<dense run> for a better one)"
    if pruner is None:
        report = sparsity_report(shadow)
        return Prediction("a dense model (pruning=none)", {}, {}, report.total, report.nonzero)
    last_update = min(total_steps, max(g.schedule.end_itr for g in pruner.groups) + 1)
    for itr in range(last_update):
        pruner.step(itr)
    scalars = pruner.scalars()
    report = sparsity_report(shadow, pruner)
    return Prediction(
        source=source,
        caveat=pruner.prediction_caveat,
        group_sparsity={g.name: scalars[f"sparsity/{g.name}"] for g in pruner.groups},
        group_params={g.name: sum(m.param.numel() for m in g.matrices) for g in pruner.groups},
        total_params=report.total, nonzero_params=report.nonzero)
