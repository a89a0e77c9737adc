"""Pruning during training: layer groups, schedules, masks (Narang et al. 2017 and comparisons)."""

from speechprune.pruning.build import build_pruner
from speechprune.pruning.pruner import Pruner
from speechprune.pruning.report import SparsityReport, sparsity_report

__all__ = ["Pruner", "SparsityReport", "build_pruner", "sparsity_report"]
