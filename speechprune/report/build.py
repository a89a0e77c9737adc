"""The whole report of a set of runs: table (Markdown, CSV), figures and fits, in one folder.

    <output>/report.md              the table, the means over seeds, the fits and links to the figures
    <output>/runs.csv               the table at full precision
    <output>/frontier.png           test WER against non-zero parameters, per family
    <output>/pruning_curves.png     sparsity and threshold over training, per group
    <output>/predicted_sparsity.png predicted against achieved sparsity
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from speechprune.model.run_dir import METRICS_FILE
from speechprune.report.fit import FamilyFit, fit_families, fits_markdown
from speechprune.report.plots import plot_frontier, plot_prediction, plot_pruning_curves
from speechprune.report.runs import Run, RunCollectionError, load_run
from speechprune.report.seeds import SeedGroup, group_by_seed, seeds_markdown
from speechprune.report.table import ReportRow, build_rows, to_markdown, write_csv

FRONTIER_PNG = "frontier.png"
CURVES_PNG = "pruning_curves.png"
PREDICTION_PNG = "predicted_sparsity.png"


@dataclass
class Report:
    rows: list[ReportRow]
    fits: list[FamilyFit]
    seed_groups: list[SeedGroup]
    markdown: str
    files: dict[str, Path] = field(default_factory=dict)  # what -> file written


def load_baseline(path: Optional[str]) -> Optional[Run]:
    if not path:
        return None
    run = load_run(Path(path), Path(path).name)
    if run is None:
        raise RunCollectionError(f"baseline={path}: the run has no {METRICS_FILE}; "
                                 "name a finished dense run")
    return run


def write_report(runs: list[Run], output_dir: Path, baseline: Optional[str] = None,
                 predict_params: Sequence[int] = (), dpi: int = 120) -> Report:
    """Build the table, fits and figures of `runs` and write them under `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = build_rows(runs, load_baseline(baseline))
    fits = fit_families(rows, predict_params)
    seed_groups = group_by_seed(runs)
    files = {"csv": output_dir / "runs.csv",
             "frontier": plot_frontier(rows, fits, output_dir / FRONTIER_PNG, dpi)}
    write_csv(rows, files["csv"])
    curves = plot_pruning_curves(runs, output_dir / CURVES_PNG, dpi)
    prediction = plot_prediction(runs, output_dir / PREDICTION_PNG, dpi)
    if curves is not None:
        files["pruning_curves"] = curves
    if prediction is not None:
        files["predicted_sparsity"] = prediction

    baselines = sorted({r.baseline for r in rows if r.baseline})
    sections = [
        "# Runs", "",
        f"{len(rows)} runs. Error rates in percent (test: best dev checkpoint). Relative figures "
        "in the paper's form, (baseline - run) / baseline: negative is worse than the dense "
        f"baseline ({', '.join(baselines) or 'none found'}). Reduction: the baseline's non-zero "
        "parameters / the run's.", "",
        to_markdown(rows), ""]
    if any(len(g.runs) > 1 for g in seed_groups):
        sections += [
            "# Across seeds", "",
            "Runs whose settings differ only in `trainer.seed`, together: error rates as mean ± "
            "sample standard deviation, and each pruned group against the dense group of the same "
            "settings, the relative figures taken of the means.", "",
            seeds_markdown(seed_groups), ""]
    sections += [
        "# WER against non-zero parameters", "",
        fits_markdown(fits), "",
        f"![frontier]({FRONTIER_PNG})", ""]
    if curves is not None:
        sections += ["# Sparsity and threshold over training", "", f"![pruning curves]({CURVES_PNG})", ""]
    if prediction is not None:
        sections += ["# Predicted against achieved sparsity", "", f"![prediction]({PREDICTION_PNG})", ""]
    markdown = "\n".join(sections)
    files["markdown"] = output_dir / "report.md"
    files["markdown"].write_text(markdown)
    return Report(rows, fits, seed_groups, markdown, files)
