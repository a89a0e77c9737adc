"""A real two-job sweep (`speechprune train -m pruning=none,narang`), then `speechprune report`
on it: run directories, the table against each run's metrics.json, the figures, and the
TensorBoard layout in the event files."""

from __future__ import annotations

import csv
import json
import re

import pytest
from matplotlib.image import imread
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from training_helpers import run_cli

from speechprune.training.dashboard_layout import (CATEGORY_ERRORS, CATEGORY_LOSS,
                                                  CATEGORY_SPARSITY, CATEGORY_THRESHOLDS)

JOBS = ("pruning=none", "pruning=narang")


@pytest.fixture(scope="module")
def report_dir(two_job_sweep, tmp_path_factory):
    output = tmp_path_factory.mktemp("report")
    result = run_cli("report", str(two_job_sweep), f"output_dir={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    return output


def metrics_of(sweep, job):
    return json.loads((sweep / job / "metrics.json").read_text())


def events_of(run_dir) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return events


@pytest.mark.slow
def test_multirun_makes_one_run_directory_per_job_named_after_its_override(two_job_sweep):
    job_dirs = sorted(p.name for p in two_job_sweep.iterdir() if p.is_dir() and p.name != "report")
    assert job_dirs == sorted(JOBS)
    for job in JOBS:
        run = two_job_sweep / job
        for name in ("config.yaml", "command.txt", "git.json", "metrics.json", "checkpoints/best.pt"):
            assert (run / name).is_file(), f"{job}/{name}"
        assert list((run / "tensorboard").glob("events.out.tfevents.*"))
        assert f"method: {job.split('=')[1]}" in (run / "config.yaml").read_text()
    assert metrics_of(two_job_sweep, "pruning=narang")["pruning_method"] == "narang"


def test_report_table_has_one_row_per_run_with_the_numbers_of_its_metrics(two_job_sweep, report_dir):
    with (report_dir / "runs.csv").open() as f:
        rows = {row["run"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(JOBS)
    dense = metrics_of(two_job_sweep, "pruning=none")
    for job, row in rows.items():
        metrics = metrics_of(two_job_sweep, job)
        assert int(row["params_total"]) == metrics["params_total"]
        assert int(row["params_nonzero"]) == metrics["params_nonzero"]
        assert float(row["sparsity"]) == pytest.approx(100 * metrics["params_sparsity"])
        assert float(row["test_wer"]) == pytest.approx(metrics["test_wer"])
        assert float(row["test_cer"]) == pytest.approx(metrics["test_cer"])
        assert float(row["dev_wer"]) == pytest.approx(metrics["dev_wer"])
        assert int(row["units"]) == 24 and row["model"] == "bigru"
        # The dense run of the sweep is the baseline; relative figures in the paper's form.
        assert row["baseline"] == "pruning=none"
        assert float(row["relative_wer"]) == pytest.approx(
            100 * (dense["test_wer"] - metrics["test_wer"]) / dense["test_wer"])
        assert float(row["relative_cer"]) == pytest.approx(
            100 * (dense["test_cer"] - metrics["test_cer"]) / dense["test_cer"])
        assert float(row["param_reduction"]) == pytest.approx(
            dense["params_nonzero"] / metrics["params_nonzero"])
    sparse = metrics_of(two_job_sweep, "pruning=narang")
    predicted = sparse["predicted"]
    assert float(rows["pruning=narang"]["predicted_sparsity"]) == pytest.approx(
        100 * (1 - predicted["params_nonzero"] / predicted["params_total"]))
    assert rows["pruning=none"]["predicted_sparsity"] == ""

    markdown = (report_dir / "report.md").read_text()
    sparse_line = next(line for line in markdown.splitlines() if line.startswith("| pruning=narang |"))
    assert f"{sparse['params_nonzero']:,}" in sparse_line
    assert f"{sparse['test_wer']:.2f}" in sparse_line


def test_report_saves_the_frontier_pruning_curves_and_prediction_plots(report_dir):
    for name in ("frontier.png", "pruning_curves.png", "predicted_sparsity.png"):
        image = imread(report_dir / name)
        height, width = image.shape[:2]
        assert height > 200 and width > 200, name
        assert image.std() > 0.01, f"{name} is blank"
        assert f"({name})" in (report_dir / "report.md").read_text()


def test_every_run_holds_a_custom_scalars_layout_whose_charts_match_its_tags(two_job_sweep):
    for job in JOBS:
        events = events_of(two_job_sweep / job)
        content = events.PluginTagToContent("custom_scalars")
        assert content, f"{job}: no custom-scalars layout"
        tensor = events.Tensors("custom_scalars__config__")[0]
        layout = layout_pb2.Layout()
        layout.ParseFromString(tensor.tensor_proto.string_val[0])
        categories = {c.title: c for c in layout.category}
        assert list(categories) == [CATEGORY_LOSS, CATEGORY_ERRORS, CATEGORY_SPARSITY, CATEGORY_THRESHOLDS]
        tags = set(events.Tags()["scalars"])

        def matched(category, title):
            chart = next(c for c in categories[category].chart if c.title == title)
            return {t for t in tags for r in chart.multiline.tag if re.search(r, t)}

        assert matched(CATEGORY_LOSS, "CTC loss (train, dev)") == {"train/loss", "dev/loss"}
        assert "dev/wer" in matched(CATEGORY_ERRORS, "dev WER (%) and the baseline's")
        if job == "pruning=narang":
            for group in ("recurrent", "input", "fc"):
                assert matched(CATEGORY_SPARSITY, f"sparsity: {group}") == {f"pruning/sparsity/{group}"}
                assert matched(CATEGORY_THRESHOLDS, f"threshold: {group}") == {f"pruning/threshold/{group}"}


def test_report_of_a_directory_without_runs_fails_naming_it(tmp_path):
    result = run_cli("report", str(tmp_path))
    assert result.returncode != 0
    assert str(tmp_path) in result.stderr and "no finished run" in result.stderr


@pytest.mark.slow
def test_report_averages_seeds_and_compares_the_pruned_run_with_the_dense_mean(
        two_job_sweep, test_experiment, tmp_path):
    """A second dense seed beside the sweep: report.md gains the across-seeds table, the dense
    seeds as one row (mean ± sd of their metrics.json), the pruned run against their mean."""
    seed2 = tmp_path / "dense_seed2"
    result = run_cli("train", "--config-dir", str(test_experiment), "experiment=report_test",
                     "pruning=none", "trainer.seed=2", f"hydra.run.dir={seed2}", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    output = tmp_path / "report"
    result = run_cli("report", str(two_job_sweep), str(seed2), f"output_dir={output}")
    assert result.returncode == 0, result.stderr[-3000:]

    dense = [metrics_of(two_job_sweep, "pruning=none"), json.loads((seed2 / "metrics.json").read_text())]
    sparse = metrics_of(two_job_sweep, "pruning=narang")
    dense_wer = sum(m["test_wer"] for m in dense) / 2
    markdown = (output / "report.md").read_text()
    seeds_section = markdown.split("# Across seeds", 1)[1].split("\n# ", 1)[0]
    rows = [line for line in seeds_section.splitlines() if line.startswith("| ") and "---" not in line][1:]
    dense_row = next(r for r in rows if "| none |" in r)
    sparse_row = next(r for r in rows if "| narang |" in r)
    assert "multirun/pruning=none, dense_seed2" in dense_row and "| 1, 2 |" in dense_row
    spread = abs(dense[0]["test_wer"] - dense[1]["test_wer"]) / 2 ** 0.5
    assert f"{dense_wer:.2f} ± {spread:.2f}" in dense_row
    assert f"{100 * (dense_wer - sparse['test_wer']) / dense_wer:+.2f}%" in sparse_row
