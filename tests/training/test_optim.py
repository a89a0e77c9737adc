"""Optimizers and the learning-rate schedules (DeepSpeech2 annealing, warm-up + cosine)."""

import math

import pytest
import torch

from speechprune.config import OptimConfig
from speechprune.training.optim import build_optimizer, build_scheduler, learning_rate_factor


def test_sgd_is_nesterov_and_adamw_takes_betas():
    model = torch.nn.Linear(3, 2)
    sgd = build_optimizer(model, OptimConfig(name="sgd", lr=0.1, momentum=0.9))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["nesterov"]
    adamw = build_optimizer(model, OptimConfig(name="adamw", betas=[0.8, 0.9]))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["betas"] == (0.8, 0.9)
    with pytest.raises(ValueError, match="optim.name='adam'"):
        build_optimizer(model, OptimConfig(name="adam"))


def test_learning_rate_anneals_once_per_epoch_after_warmup():
    cfg = OptimConfig(lr=1.0, anneal=2.0, warmup_steps=4)
    factors = [learning_rate_factor(step, 10, cfg, total_steps=25) for step in range(25)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[9] == 1.0 and factors[10] == 0.5 and factors[19] == 0.5 and factors[20] == 0.25


def test_scheduler_drives_the_optimizer_learning_rate():
    model = torch.nn.Linear(3, 2)
    cfg = OptimConfig(name="sgd", lr=0.2, anneal=2.0)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch=3, total_steps=9)
    seen = []
    for _ in range(7):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05])


def test_cosine_schedule_warms_up_then_decays_to_zero_at_the_last_step():
    """Seen to fail: with `progress` measured from step 0 instead of the end of the warm-up the
    peak is below 1.0; with `total_steps` ignored (decay over one epoch) the midpoint is 0."""
    cfg = OptimConfig(lr=1.0, schedule="cosine", warmup_steps=4)
    factors = [learning_rate_factor(step, 10, cfg, total_steps=104) for step in range(105)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[54] == pytest.approx(0.5) and factors[104] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(factors[3:], factors[4:]))
    assert factors[29] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))


def test_unknown_schedule_is_an_error_naming_the_key():
    optimizer = build_optimizer(torch.nn.Linear(3, 2), OptimConfig(name="sgd"))
    with pytest.raises(ValueError, match="optim.schedule='onecycle'"):
        build_scheduler(optimizer, OptimConfig(schedule="onecycle"), steps_per_epoch=3, total_steps=9)
