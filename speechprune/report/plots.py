"""The report's figures, saved as PNG.

Figures are built with matplotlib's object API (no pyplot, no display): safe on a headless
machine and in parallel tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from matplotlib.figure import Figure

from speechprune.report.fit import FamilyFit
from speechprune.report.runs import Curve, Run, read_curves
from speechprune.report.table import ReportRow


def save(figure: Figure, path: Path, dpi: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


def plot_frontier(rows: list[ReportRow], fits: list[FamilyFit], path: Path, dpi: int) -> Path:
    """Test WER against non-zero parameters (log scale), one series per family (dense and
    sparse apart, so the frontier shows), each point labelled with its units; the family's
    fitted power law dashed."""
    figure = Figure(figsize=(7.5, 5), layout="constrained")
    axes = figure.add_subplot()
    fits_by_family = {f.family: f for f in fits}
    for family in sorted({r.family for r in rows}):
        members = sorted((r for r in rows if r.family == family), key=lambda r: r.params_nonzero)
        x = [r.params_nonzero for r in members]
        y = [r.test_wer for r in members]
        marker = "o" if family.endswith("dense") else "s"
        (line,) = axes.plot(x, y, marker=marker, linestyle="-", label=family)
        for row in members:
            axes.annotate(f"{row.units}", (row.params_nonzero, row.test_wer), fontsize=7,
                          textcoords="offset points", xytext=(4, 4))
        fit = fits_by_family.get(family)
        if fit is not None:
            grid = np.geomspace(min(x), max(x), 50)
            axes.plot(grid, [fit.law.predict(n) for n in grid], linestyle="--",
                      color=line.get_color(), alpha=0.6, label=f"{family} fit")
            for size, wer in fit.predictions.items():
                axes.plot([size], [wer], marker="x", color=line.get_color(), linestyle="none")
    axes.set_xscale("log")
    axes.set_xlabel("non-zero parameters")
    axes.set_ylabel("test WER (%)")
    axes.set_title("WER against model size (labels: units per direction; x: fit's prediction)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    return save(figure, path, dpi)


def pruning_curves(runs: list[Run]) -> dict[str, dict[str, dict[str, Curve]]]:
    """run name -> group -> {"sparsity": curve, "threshold": curve} from the event files."""
    curves = {}
    for run in runs:
        if run.is_dense:
            continue
        tags = [f"pruning/{kind}/{group}" for group in run.pruning_groups
                for kind in ("sparsity", "threshold")]
        found = read_curves(run, tags)
        curves[run.name] = {
            group: {kind: found[f"pruning/{kind}/{group}"] for kind in ("sparsity", "threshold")
                    if f"pruning/{kind}/{group}" in found}
            for group in run.pruning_groups}
    return curves


def plot_pruning_curves(runs: list[Run], path: Path, dpi: int) -> Optional[Path]:
    """Sparsity (top row) and threshold (bottom row) against training step, one column per
    pruning group, one line per pruned run. None when no run was pruned."""
    curves = pruning_curves(runs)
    groups = sorted({g for per_run in curves.values() for g in per_run})
    if not groups:
        return None
    figure = Figure(figsize=(4 * len(groups), 6.5), layout="constrained")
    grid = figure.subplots(2, len(groups), squeeze=False, sharex=True)
    for column, group in enumerate(groups):
        for row, (kind, label) in enumerate((("sparsity", "sparsity"), ("threshold", "threshold |w|"))):
            axes = grid[row][column]
            for run_name, per_group in curves.items():
                curve = per_group.get(group, {}).get(kind)
                if curve is not None and curve.steps:
                    axes.plot(curve.steps, curve.values, label=run_name)
            axes.set_title(f"{group}: {kind}", fontsize=9)
            axes.set_ylabel(label)
            axes.grid(True, alpha=0.3)
            if row == 1:
                axes.set_xlabel("step")
    grid[0][0].legend(fontsize=7)
    return save(figure, path, dpi)


def plot_prediction(runs: list[Run], path: Path, dpi: int) -> Optional[Path]:
    """Achieved against predicted sparsity, one point per pruned run and group (and the whole
    model), with the diagonal of a perfect prediction. None when no run has a prediction."""
    points: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        predicted = run.metrics.get("predicted")
        achieved = run.metrics.get("pruning")
        if not predicted or not achieved:
            continue
        for key, value in predicted.items():
            if key.startswith("sparsity/") and key in achieved:
                points.setdefault(key.removeprefix("sparsity/"), []).append((value, achieved[key]))
        if predicted.get("params_total"):
            points.setdefault("model", []).append(
                (1 - predicted["params_nonzero"] / predicted["params_total"],
                 run.metrics["params_sparsity"]))
    if not points:
        return None
    figure = Figure(figsize=(5.5, 5), layout="constrained")
    axes = figure.add_subplot()
    for group, pairs in sorted(points.items()):
        axes.scatter([100 * p for p, _ in pairs], [100 * a for _, a in pairs], label=group)
    axes.plot([0, 100], [0, 100], color="grey", linestyle=":", label="perfect prediction")
    axes.set_xlabel("predicted sparsity (%)")
    axes.set_ylabel("achieved sparsity (%)")
    axes.set_title("Sparsity: predicted before training vs achieved")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    return save(figure, path, dpi)
