"""Training with pruning: what metrics.json, TensorBoard and `speechprune predict` report."""

from __future__ import annotations

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from training_helpers import compose_train, run_cli

from speechprune.training.checkpoint import load_checkpoint
from speechprune.training.loop import train
from speechprune.training.run_dir import RunDirectory

# Every group pruned after the first epoch, updated every step, finished at 75% of the run,
# towards the median |w| (a tiny run's weights are far from a trained baseline's 90th percentile).
FAST_SCHEDULE = [f"pruning.groups.{g}.{key}={value}" for g in ("recurrent", "input", "fc")
                 for key, value in (("start_itr", "'1 epoch'"), ("ramp_itr", "'50%'"),
                                    ("end_itr", "'75%'"), ("freq", 1), ("percentile", 50))]


def test_narang_run_reports_sparsity_prediction_and_baseline_relative_figures(
        tiny_train_overrides, tmp_path):
    dense_dir, sparse_dir = tmp_path / "dense", tmp_path / "sparse"
    common = tiny_train_overrides + ["trainer.epochs=4"]
    dense = train(compose_train(common), RunDirectory(dense_dir))
    sparse = train(compose_train(common + ["pruning=narang", f"pruning.baseline={dense_dir}"]
                                 + FAST_SCHEDULE), RunDirectory(sparse_dir))

    on_disk = json.loads((sparse_dir / "metrics.json").read_text())
    assert on_disk["pruning_method"] == "narang"
    recurrent = on_disk["pruning"]["sparsity/recurrent"]
    assert 0.2 < recurrent < 1.0
    assert on_disk["params_nonzero"] < dense["params_nonzero"]
    assert on_disk["params_total"] == dense["params_total"]
    # Achieved and predicted side by side, and the difference between them.
    predicted = on_disk["predicted"]["sparsity/recurrent"]
    assert on_disk["prediction_error"]["recurrent"] == pytest.approx(recurrent - predicted)
    assert "baseline run" in on_disk["predicted"]["source"]
    # Relative figures in the paper's form (baseline - this) / baseline.
    assert on_disk["relative_test_wer"] == pytest.approx(
        (dense["test_wer"] - sparse["test_wer"]) / dense["test_wer"])
    assert on_disk["param_reduction"] == pytest.approx(dense["params_nonzero"] / sparse["params_nonzero"])

    # The best checkpoint holds the masks, and the masked weights are exactly zero.
    checkpoint = load_checkpoint(sparse_dir / "checkpoints/best.pt")
    # Only evaluations after the last mask update compete for best: an earlier, half-pruned
    # model with a lower dev WER must not become the model that is tested and exported.
    end_itr = max(group["schedule"][2] for group in checkpoint["pruner"]["groups"].values())
    assert on_disk["best_step"] > end_itr  # best_step counts steps taken; end_itr is 0-based
    assert checkpoint["pruner"]["last_itr"] >= end_itr
    last = load_checkpoint(sparse_dir / "checkpoints/last.pt")["pruner"]["groups"]
    for group, entry in checkpoint["pruner"]["groups"].items():
        for name, matrix in entry["matrices"].items():  # the final masks, not earlier ones
            assert torch.equal(matrix["mask"], last[group]["matrices"][name]["mask"]), name
    masks = checkpoint["pruner"]["groups"]["recurrent"]["matrices"]
    for name, entry in masks.items():
        assert (checkpoint["model"][name][~entry["mask"]] == 0).all()

    events = EventAccumulator(str(sparse_dir / "tensorboard"), size_guidance={"histograms": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in ("pruning/threshold/recurrent", "pruning/sparsity/recurrent", "pruning/sparsity/input",
                "pruning/params/nonzero", "hparams/relative_test_wer", "hparams/param_reduction"):
        assert tag in scalars, tag
    thresholds = [e.value for e in events.Scalars("pruning/threshold/recurrent")]
    assert thresholds == sorted(thresholds) and thresholds[-1] > 0
    assert {"weights/recurrent", "weights/input", "weights/fc"} <= set(events.Tags()["histograms"])


def test_a_run_that_ends_before_its_schedule_takes_its_final_model_as_best(
        tiny_train_overrides, tmp_path, caplog):
    # end_itr at 100%: the masks still change at the last step, so no evaluation is a
    # candidate until the run's last one, which becomes best without being evaluated twice.
    schedule = [o.replace("'75%'", "'100%'") for o in FAST_SCHEDULE]
    with caplog.at_level("INFO", logger="speechprune.training.loop"):
        metrics = train(compose_train(tiny_train_overrides + ["trainer.epochs=3", "pruning=narang"]
                                      + schedule), RunDirectory(tmp_path))
    assert metrics["best_step"] == metrics["steps"]
    dev_lines = [r.getMessage() for r in caplog.records if " dev: loss " in r.getMessage()]
    assert len(dev_lines) == 3
    assert ["not a candidate" in line for line in dev_lines] == [True, True, False]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert len(events.Scalars("dev/wer")) == 3


def test_predict_command_prints_each_group_and_the_model(tiny_train_overrides):
    result = run_cli("predict", *tiny_train_overrides, "trainer.epochs=4", "pruning=narang",
                     *FAST_SCHEDULE)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for group in ("recurrent", "input", "fc", "model"):
        assert any(line.startswith(group) and "%" in line for line in lines), group


def test_bad_schedule_stops_at_start_up_naming_group_and_key(tiny_train_overrides, tmp_path):
    result = run_cli("train", *tiny_train_overrides, "pruning=narang",
                     "pruning.groups.recurrent.ramp_itr=0", "pruning.groups.recurrent.start_itr=5",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1
    # One line naming the key, not a traceback.
    assert result.stderr.startswith("speechprune train: pruning.groups.recurrent.ramp_itr='0'")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_predict_stops_in_one_line_on_a_missing_baseline(tiny_train_overrides, tmp_path):
    result = run_cli("predict", *tiny_train_overrides, "pruning=narang", *FAST_SCHEDULE,
                     f"pruning.baseline={tmp_path / 'no_such_run'}")
    assert result.returncode == 1
    assert result.stderr.startswith(f"speechprune predict: pruning.baseline='{tmp_path / 'no_such_run'}'")
    assert "Traceback" not in result.stderr
