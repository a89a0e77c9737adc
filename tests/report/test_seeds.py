"""Runs that differ only in their seed: grouped, averaged, and compared mean against mean."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from speechprune.report.runs import Run
from speechprune.report.seeds import group_by_seed, seeds_markdown

NARANG = {"method": "narang", "baseline": None,
          "groups": {"recurrent": {"patterns": ["*weight_hh*"], "percentile": 90.0}}}


def run(name: str, seed: int, wer: float, cer: float, pruning: dict | None = None,
        hidden: int = 256, nonzero: int = 1_000_000, **trainer) -> Run:
    pruning = pruning or {"method": "none", "baseline": None, "groups": {}}
    config = {"model": {"name": "bigru", "hidden_size": hidden, "num_layers": 2},
              "optim": {"lr": 2e-3, "betas": [0.9, 0.98]},
              "trainer": {"epochs": 24, "seed": seed, "threads": 1, **trainer},
              "pruning": pruning, "experiment_name": "quickstart_long"}
    metrics = {"params_total": 1_000_000, "params_nonzero": nonzero,
               "params_sparsity": 1 - nonzero / 1_000_000, "dev_wer": wer + 1, "test_wer": wer,
               "test_cer": cer}
    return Run(Path(name), name, config, metrics)


def pruned(name: str, seed: int, wer: float, cer: float, baseline: str, **kwargs) -> Run:
    return run(name, seed, wer, cer, pruning={**NARANG, "baseline": baseline}, nonzero=125_000,
               **kwargs)


def test_seeds_of_one_setting_form_one_group_with_mean_and_sample_deviation():
    runs = [run("dense_s2", 2, 24.0, 9.0), run("dense_s1", 1, 18.0, 7.0), run("dense_s3", 3, 21.0, 8.0)]
    [group] = group_by_seed(runs)
    assert group.runs == ["dense_s1", "dense_s2", "dense_s3"]  # in seed order
    assert group.seeds == [1, 2, 3]
    assert group.test_wer == pytest.approx(21.0)
    assert group.test_wer_sd == pytest.approx(statistics.stdev([18.0, 24.0, 21.0]))
    assert group.test_cer == pytest.approx(8.0)
    assert group.relative_wer is None  # a dense group has no baseline


def test_pruned_groups_are_compared_mean_against_mean_with_the_dense_group_of_their_settings():
    runs = [run("dense_s1", 1, 18.0, 6.0), run("dense_s2", 2, 22.0, 10.0),
            # pruned against their own dense seed, and one run on two threads: still one group
            pruned("narang_s1", 1, 25.0, 9.0, baseline="dense_s1"),
            pruned("narang_s2", 2, 23.0, 9.0, baseline="dense_s2", threads=2)]
    dense, sparse = group_by_seed(runs)
    assert dense.runs == ["dense_s1", "dense_s2"]
    assert sparse.runs == ["narang_s1", "narang_s2"]
    assert sparse.relative_wer == pytest.approx(100 * (20.0 - 24.0) / 20.0)  # -20%, not -38.9/-4.5
    assert sparse.relative_cer == pytest.approx(100 * (8.0 - 9.0) / 8.0)
    assert sparse.param_reduction == pytest.approx(8.0)
    assert sparse.baseline == "dense_s1"


def test_a_setting_that_differs_in_anything_but_the_seed_is_a_group_of_its_own():
    runs = [run("dense_256", 1, 18.0, 6.0), run("dense_384", 1, 17.0, 6.0, hidden=384),
            run("dense_12_epochs", 2, 27.0, 10.0, epochs=12),
            pruned("narang_384", 1, 21.0, 7.0, baseline="dense_384", hidden=384)]
    groups = group_by_seed(runs)
    assert [g.runs for g in groups] == [["dense_12_epochs"], ["dense_256"], ["dense_384"], ["narang_384"]]
    narang = groups[-1]
    assert narang.baseline == "dense_384"  # its own width, not the 256-unit model
    assert narang.relative_wer == pytest.approx(100 * (17.0 - 21.0) / 17.0)


def test_a_pruned_group_without_a_dense_twin_has_no_relative_figures():
    [group] = group_by_seed([pruned("narang_s1", 1, 25.0, 9.0, baseline="elsewhere"),
                             pruned("narang_s2", 2, 27.0, 9.0, baseline="elsewhere")])
    assert group.relative_wer is None and group.baseline == ""


def test_the_markdown_table_shows_mean_plus_minus_deviation_and_the_relative_of_means():
    groups = group_by_seed([run("dense_s1", 1, 18.0, 6.0), run("dense_s2", 2, 22.0, 10.0),
                            pruned("narang_s1", 1, 25.0, 9.0, baseline="dense_s1")])
    lines = seeds_markdown(groups).splitlines()
    assert len(lines) == 2 + 2
    assert "| dense_s1, dense_s2 | none | 256 | 1, 2 |" in lines[2]
    assert "20.00 ± 2.83" in lines[2] and "8.00 ± 2.83" in lines[2]
    assert "| narang_s1 | narang |" in lines[3]
    assert "25.00 |" in lines[3] and "-25.00%" in lines[3] and "8.0x" in lines[3]
