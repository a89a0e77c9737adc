"""Test helpers for tests/pruning: small recurrent models named like DeepSpeech2 (`conv`,
`rnns.<i>`, `fc`), config builders and a deterministic training loop."""

from __future__ import annotations

import typing
from dataclasses import fields, replace

import torch
from torch import nn

from speechprune.config import PruningConfig
from speechprune.pruning import METHODS

RNN_CLASSES = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class TinySpeechModel(nn.Module):
    """conv front end -> stack of recurrent layers under `rnns` -> batch norm + linear under `fc`."""

    def __init__(self, rnn_type: str = "gru", bidirectional: bool = True, layers: int = 2, hidden: int = 16, features: int = 8):
        super().__init__()
        self.conv = nn.Conv1d(features, features, kernel_size=3, padding=1)
        rnn_class = RNN_CLASSES[rnn_type]
        directions = 2 if bidirectional else 1
        self.rnns = nn.ModuleList(
            rnn_class(features if i == 0 else hidden * directions, hidden, batch_first=True, bidirectional=bidirectional)
            for i in range(layers)
        )
        self.fc = nn.Sequential(nn.BatchNorm1d(hidden * directions), nn.Linear(hidden * directions, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, time, features) -> logits (batch, time, 6)."""
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        for rnn in self.rnns:
            x, _ = rnn(x)
        batch, time, width = x.shape
        return self.fc(x.reshape(batch * time, width)).reshape(batch, time, -1)


def default_groups(**schedule) -> dict[str, dict]:
    """The three paper groups (recurrent, input, fc), each with the given group keys."""
    patterns = {"recurrent": ["*weight_hh*"], "input": ["*weight_ih*"], "fc": ["fc.*weight"]}
    return {name: {"patterns": pats, **schedule} for name, pats in patterns.items()}


def pruning_config(method: str, groups: dict[str, dict] | None = None, **settings) -> PruningConfig:
    """The typed config of `method` (its registered config class) with these groups and
    method-wide settings. Group keys the method does not read are left out, so that one
    schedule serves every method."""
    config_class = METHODS[method].config_class if method in METHODS else PruningConfig
    if method not in METHODS:
        return replace(config_class(method=method), **settings)
    group_class = typing.get_type_hints(config_class)["groups"].__args__[1]
    names = {f.name for f in fields(group_class)}
    typed_groups = {name: group_class(**{k: v for k, v in keys.items() if k in names})
                    for name, keys in (groups if groups is not None else default_groups()).items()}
    return config_class(groups=typed_groups, **settings)


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, pruner, itrs: range, seed: int = 0) -> None:
    """Real optimizer steps on a fixed random regression batch per step (deterministic by itr)."""
    for itr in itrs:
        generator = torch.Generator().manual_seed(seed * 100_003 + itr)
        inputs = torch.randn(4, 5, 8, generator=generator)
        targets = torch.randn(4, 5, 6, generator=generator)
        loss = nn.functional.mse_loss(model(inputs), targets)
        if pruner is not None:
            loss = loss + pruner.regularization()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if pruner is not None:
            pruner.step(itr)
