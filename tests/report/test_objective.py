"""What `speechprune train` returns to a sweeper: the metric, penalised above a parameter budget."""

from __future__ import annotations

import math

import pytest

from speechprune.config import SweepObjectiveConfig
from speechprune.report.objective import sweep_objective

METRICS = {"dev_wer": 30.0, "test_wer": 32.0, "params_nonzero": 110_000, "pruning_method": "narang"}


def test_without_a_budget_the_objective_is_the_metric():
    assert sweep_objective(METRICS, SweepObjectiveConfig()) == 30.0
    assert sweep_objective(METRICS, SweepObjectiveConfig(metric="test_wer")) == 32.0


def test_a_run_within_budget_is_not_penalised_and_one_over_it_pays_per_relative_excess():
    assert sweep_objective(METRICS, SweepObjectiveConfig(max_params_nonzero=110_000)) == 30.0
    over = SweepObjectiveConfig(max_params_nonzero=100_000, over_budget_penalty=100.0)
    assert sweep_objective(METRICS, over) == pytest.approx(30.0 + 10.0)


def test_a_misspelt_metric_names_the_key_and_the_choices():
    with pytest.raises(ValueError, match="objective.metric='dev_werr'.*dev_wer"):
        sweep_objective(METRICS, SweepObjectiveConfig(metric="dev_werr"))


def test_no_metrics_gives_nan_for_the_sweeper_to_mark_the_trial_failed():
    assert math.isnan(sweep_objective({}, SweepObjectiveConfig()))
