"""Training with pruning: what metrics.json, TensorBoard and `speechprune predict` report."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from training_helpers import compose_train, run_cli

from speechprune.data.manifest import read_jsonl
from speechprune.inference.recognizer import Recognizer
from speechprune.model.checkpoint import load_checkpoint
from speechprune.model.run_dir import RunDirectory
from speechprune.training.loop import StartupError, Trainer, train

# Every group pruned after the first epoch, updated every step, finished at 75% of the run,
# towards the median |w| (a tiny run's weights are far from a trained baseline's 90th percentile).
FAST_SCHEDULE = [f"pruning.groups.{g}.{key}={value}" for g in ("recurrent", "input", "fc")
                 for key, value in (("start_itr", "'1 epoch'"), ("ramp_itr", "'50%'"),
                                    ("end_itr", "'75%'"), ("freq", 1), ("percentile", 50))]


def assert_masked_weights_are_zero(checkpoint: dict) -> int:
    """Every weight the checkpoint's masks prune is exactly zero; returns how many."""
    pruned = 0
    for entry in checkpoint["pruner"]["groups"].values():
        for name, matrix in entry["matrices"].items():
            assert (checkpoint["model"][name][~matrix["mask"]] == 0).all(), name
            pruned += int((~matrix["mask"]).sum())
    return pruned


def assert_whole_blocks(mask: torch.Tensor, block_shape: tuple[int, int]) -> None:
    """Each (rows, cols) tile of `mask`, from the top left (edge tiles smaller), is all kept
    or all pruned."""
    rows, cols = block_shape
    for top in range(0, mask.shape[0], rows):
        for left in range(0, mask.shape[1], cols):
            tile = mask[top:top + rows, left:left + cols]
            assert tile.all() or not tile.any(), (top, left, tile)


@pytest.mark.slow
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
    assert assert_masked_weights_are_zero(checkpoint) > 0

    events = EventAccumulator(str(sparse_dir / "tensorboard"), size_guidance={"histograms": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in ("pruning/threshold/recurrent", "pruning/sparsity/recurrent", "pruning/sparsity/input",
                "pruning/params/nonzero", "hparams/relative_test_wer", "hparams/param_reduction"):
        assert tag in scalars, tag
    # The dev WER relative to the baseline's at every evaluation: the relative chart's curve.
    relative = {e.step: e.value for e in events.Scalars("relative/dev_wer")}
    dev_wer = {e.step: e.value for e in events.Scalars("dev/wer")}
    assert relative.keys() == dev_wer.keys() and len(relative) == 4
    for step, value in relative.items():
        assert value == pytest.approx((dense["dev_wer"] - dev_wer[step]) / dense["dev_wer"])
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


# Each method's schedule squeezed into a 4-epoch run of the tiny model (about 12 steps):
# updates every step, masks final at 75% of the run. block: the largest |w| of 16 uniformly
# initialized weights lies close to the initialization's bound, so block maxima bunch up and
# the median's threshold prunes every block; their 5th percentile prunes about a third.
METHOD_SCHEDULES = {
    "gradual": ["start_itr='1 epoch'", "end_itr='75%'", "freq=1", "target_sparsity=0.6"],
    "oneshot": ["start_itr=0", "end_itr='75%'", "target_sparsity=0.6"],
    "l1": ["start_itr=0", "end_itr='75%'", "target_sparsity=0.6"],
    "block": ["start_itr='1 epoch'", "ramp_itr='50%'", "end_itr='75%'", "freq=1",
              "percentile=5"],
}


@pytest.mark.parametrize("method", list(METHOD_SCHEDULES))
def test_each_method_trains_to_its_sparsity_with_pruned_weights_exactly_zero(
        tiny_train_overrides, tmp_path, method):
    """gradual, oneshot and l1 cut every matrix to target_sparsity (within one entry of it);
    block prunes whole 4x4 blocks (edge blocks smaller).

    Seen to fail: Pruner.step without apply_masks (pruned weights not zero in best.pt);
    update_gradual cutting to half the cubic target (sparsity 0.3); the block rule
    comparing each entry's |w| instead of its block's largest (tiles half pruned)."""
    schedule = [f"pruning.groups.{group}.{setting}" for group in ("recurrent", "input", "fc")
                for setting in METHOD_SCHEDULES[method]]
    extra = ["pruning.l1_strength=1e-3"] if method == "l1" else []
    metrics = train(compose_train(tiny_train_overrides + ["trainer.epochs=4", f"pruning={method}"]
                                  + schedule + extra), RunDirectory(tmp_path))

    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["pruning_method"] == method
    checkpoint = load_checkpoint(tmp_path / "checkpoints/best.pt")
    assert checkpoint["pruner"]["method"] == method
    assert assert_masked_weights_are_zero(checkpoint) > 0
    for group, entry in checkpoint["pruner"]["groups"].items():
        sparsity = on_disk["pruning"][f"sparsity/{group}"]
        if method == "block":
            assert 0.1 < sparsity < 1.0, group
            for matrix in entry["matrices"].values():
                assert_whole_blocks(matrix["mask"], (4, 4))
        else:
            numel = sum(m["mask"].numel() for m in entry["matrices"].values())
            assert sparsity == pytest.approx(0.6, abs=len(entry["matrices"]) / numel), group
    assert math.isfinite(metrics["test_loss"])


def test_bf16_training_keeps_pruned_weights_exactly_zero_and_its_checkpoint_loads(
        tiny_train_overrides, micro_corpus, tmp_path):
    """CPU autocast in bfloat16 with Narang pruning: the training forward runs in bf16, the loss
    stays finite, the masks stay exact through bf16 matrix products, and the best checkpoint
    loads into a recognizer.

    Seen to fail: Pruner.step without apply_masks (pruned weights not zero); train_step's
    autocast switched off (the output layer ran in float32)."""
    trainer = Trainer(compose_train(tiny_train_overrides + [
        "trainer.epochs=4", "trainer.precision=bf16", "pruning=narang"] + FAST_SCHEDULE),
        RunDirectory(tmp_path))
    output_dtypes = set()
    trainer.model.fc.output.register_forward_hook(
        lambda module, inputs, output: output_dtypes.add(output.dtype) if module.training else None)
    metrics = trainer.run()
    assert output_dtypes == {torch.bfloat16}
    assert math.isfinite(metrics["test_loss"])
    assert metrics["nonfinite_steps"] == 0
    checkpoint = load_checkpoint(tmp_path / "checkpoints/best.pt")
    assert checkpoint["config"]["trainer"]["precision"] == "bf16"
    assert assert_masked_weights_are_zero(checkpoint) > 0
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert all(math.isfinite(e.value) for e in events.Scalars("train/loss"))
    recognizer = Recognizer.from_checkpoint(tmp_path, torch.device("cpu"))
    assert all(p.dtype == torch.float32 for p in recognizer.model.parameters())
    audio = read_jsonl(micro_corpus / "test.jsonl")[0].audio_filepath
    assert isinstance(recognizer.transcribe([audio], autocast_dtype=torch.bfloat16)[0], str)


def test_fp16_on_the_cpu_stops_before_training_saying_what_to_use_instead(tiny_train_overrides, tmp_path):
    """fp16 is a GPU setting (scripts/check_gpu.py trains with it there).

    Seen to fail: autocast_dtype without its fp16-on-CPU check (the run trained)."""
    with pytest.raises(StartupError, match="trainer.precision=fp16 needs a GPU; use bf16 or fp32"):
        train(compose_train(tiny_train_overrides + ["trainer.precision=fp16", "trainer.device=cpu"]),
              RunDirectory(tmp_path))
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.slow
def test_predict_command_prints_each_group_and_the_model(tiny_train_overrides):
    result = run_cli("predict", *tiny_train_overrides, "trainer.epochs=4", "pruning=narang",
                     *FAST_SCHEDULE)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for group in ("recurrent", "input", "fc", "model"):
        assert any(line.startswith(group) and "%" in line for line in lines), group


@pytest.mark.slow
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
