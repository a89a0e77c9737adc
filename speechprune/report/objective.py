"""The number a Hydra sweeper (e.g. Optuna) minimizes for one training run.

With a parameter budget, "how small can the model get, and at what WER?" becomes one
objective: the run's error rate, plus a penalty that grows with how far its non-zero
parameters exceed the budget. The penalty is graded, not a wall, so the sampler still learns
which direction leads back under the budget.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from speechprune.model.run_dir import METRICS_FILE


def sweep_objective(metrics: Mapping[str, Any], objective: Any) -> float:
    """`metrics[objective.metric]` (nan when there are no metrics: a non-main rank), plus
    `objective.over_budget_penalty` x the relative excess of `params_nonzero` over
    `objective.max_params_nonzero` (no budget when that is 0).

    `objective` is a SweepObjectiveConfig; a run 10% over budget with penalty 100 scores 10
    points worse."""
    if not metrics:
        return math.nan
    if objective.metric not in metrics:
        numbers = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)))
        raise ValueError(f"objective.metric={objective.metric!r} is not in {METRICS_FILE}; "
                         f"choose one of {numbers}")
    value = float(metrics[objective.metric])
    budget = objective.max_params_nonzero
    if budget > 0:
        excess = max(0.0, metrics["params_nonzero"] / budget - 1.0)
        value += objective.over_budget_penalty * excess
    return value
