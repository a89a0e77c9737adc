"""Optimizer and learning-rate schedule from the `optim` config group."""

from __future__ import annotations

import math

import torch

from speechprune.config import OptimConfig

SCHEDULES = ("anneal", "cosine")


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas),
                                 weight_decay=cfg.weight_decay)
    raise ValueError(f"optim.name={cfg.name!r} is not an optimizer; choose 'sgd' or 'adamw'")


def learning_rate_factor(step: int, steps_per_epoch: int, cfg: OptimConfig,
                         total_steps: int) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based): linear warm-up
    over `warmup_steps`, then either divided by `anneal` once per completed epoch (DeepSpeech2)
    or decayed along half a cosine that reaches 0 at step `total_steps`."""
    warmup = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    if cfg.schedule == "cosine":
        decay_steps = max(1, total_steps - cfg.warmup_steps)
        progress = min(1.0, max(0, step - cfg.warmup_steps) / decay_steps)
        return warmup * 0.5 * (1.0 + math.cos(math.pi * progress))
    epoch = step // max(1, steps_per_epoch)
    return warmup / (cfg.anneal ** epoch)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int,
                    total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler: call `.step()` after every optimizer step."""
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule={cfg.schedule!r}: choose one of {list(SCHEDULES)}")
    if cfg.anneal <= 0:
        raise ValueError(f"optim.anneal={cfg.anneal} must be positive (1.0 disables annealing)")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, steps_per_epoch, cfg, total_steps))
