"""`speechprune report <run or sweep directory> ... [baseline=<dense run>] [output_dir=...]`:
one table of every finished run (Markdown and CSV), the WER-against-size frontier, pruning
curves, predicted-against-achieved sparsity and a power-law fit per model family."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR, one_line_errors, positional_overrides
from speechprune.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="report")
def run(cfg: DictConfig) -> None:
    from speechprune.report.build import write_report
    from speechprune.report.runs import RunCollectionError, collect_runs

    with one_line_errors("report", RunCollectionError):
        runs = collect_runs(list(cfg.runs))
        output_dir = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.runs[0]) / "report"
        report = write_report(runs, output_dir, cfg.baseline, list(cfg.predict_params), cfg.dpi)
    print(report.markdown)
    print(f"report written to {output_dir}: " + ", ".join(p.name for p in report.files.values()))


def main() -> None:
    """Positional arguments are the run or sweep directories (or use runs=[...])."""
    sys.argv = sys.argv[:1] + positional_overrides(sys.argv[1:], [], rest="runs")
    run()
