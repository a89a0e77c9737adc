"""Pruning during training: layer groups, schedules, masks (Narang et al. 2017 and comparisons)."""

from speechprune.pruning.build import build_pruner
from speechprune.pruning.pruner import METHODS, Pruner, register_method_configs
from speechprune.pruning.report import SparsityReport, sparsity_report

__all__ = ["METHODS", "Pruner", "SparsityReport", "build_pruner", "register_method_configs", "sparsity_report"]
