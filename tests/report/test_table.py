"""The report table: which dense baseline each run is compared with, and its two formats."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from speechprune.report.runs import Run
from speechprune.report.table import build_rows, to_csv, to_markdown


def run(name: str, model: str, method: str, hidden: int, total: int, nonzero: int, wer: float,
        cer: float, **extra) -> Run:
    metrics = {"params_total": total, "params_nonzero": nonzero, "params_sparsity": 1 - nonzero / total,
               "dev_wer": wer + 1, "test_wer": wer, "test_cer": cer, **extra}
    config = {"model": {"name": model, "hidden_size": hidden, "num_layers": 2},
              "pruning": {"method": method, "groups": {}}}
    return Run(Path(name), name, config, metrics)


RUNS = [run("gru_sparse", "bigru", "narang", 256, 2_000_000, 250_000, 24.0, 10.0),
        run("gru_small", "bigru", "none", 48, 260_000, 260_000, 30.0, 12.0),
        run("gru_base", "bigru", "none", 256, 2_000_000, 2_000_000, 20.0, 8.0),
        run("rnn_base", "birnn", "none", 256, 700_000, 700_000, 40.0, 16.0),
        run("rnn_sparse", "birnn", "narang", 256, 700_000, 100_000, 50.0, 20.0)]


def test_each_run_is_compared_with_the_largest_dense_run_of_its_model():
    rows = {r.run: r for r in build_rows(RUNS)}
    assert rows["gru_sparse"].baseline == "gru_base"
    assert rows["gru_sparse"].relative_wer == pytest.approx(100 * (20 - 24) / 20)  # -20%: worse
    assert rows["gru_sparse"].relative_cer == pytest.approx(100 * (8 - 10) / 8)
    assert rows["gru_sparse"].param_reduction == pytest.approx(8.0)
    assert rows["gru_small"].relative_wer == pytest.approx(-50.0)
    assert rows["gru_base"].relative_wer == 0.0
    assert rows["rnn_sparse"].baseline == "rnn_base"
    assert rows["rnn_sparse"].relative_wer == pytest.approx(-25.0)


def test_rows_are_grouped_by_model_dense_first_then_larger_first():
    assert [r.run for r in build_rows(RUNS)] == ["gru_base", "gru_small", "gru_sparse",
                                                 "rnn_base", "rnn_sparse"]


def test_a_run_trained_against_pruning_baseline_keeps_its_own_relative_figures():
    own = run("pruned_against_x", "bigru", "narang", 256, 2_000_000, 200_000, 22.0, 9.0,
              relative_test_wer=-0.05, relative_test_cer=-0.02, param_reduction=10.0,
              baseline={"run": "runs/x"})
    (row,) = [r for r in build_rows(RUNS + [own]) if r.run == "pruned_against_x"]
    assert row.baseline == "runs/x"
    assert row.relative_wer == pytest.approx(-5.0) and row.param_reduction == 10.0


def test_a_baseline_named_for_the_report_overrides_every_other_choice():
    chosen = run("chosen", "bigru", "none", 128, 800_000, 800_000, 25.0, 10.0)
    rows = {r.run: r for r in build_rows(RUNS, explicit_baseline=chosen)}
    assert {r.baseline for r in rows.values()} == {"chosen"}
    assert rows["gru_base"].relative_wer == pytest.approx(100 * (25 - 20) / 25)


def test_markdown_and_csv_hold_one_line_per_run():
    rows = build_rows(RUNS)
    markdown = to_markdown(rows).splitlines()
    assert len(markdown) == 2 + len(RUNS)
    assert markdown[0].startswith("| run | model |")
    assert "| gru_sparse | bigru | narang | 256 | 2,000,000 | 250,000 | 87.5% |" in markdown[4]
    assert "-20.00%" in markdown[4] and "8.0x" in markdown[4]
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert [p["run"] for p in parsed] == [r.run for r in rows]
    assert float(parsed[0]["test_wer"]) == 20.0 and parsed[0]["predicted_sparsity"] == ""
