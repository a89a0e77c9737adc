"""`predict_pruning`: the schedule replayed on frozen weights, checked against the sparsity
computed by hand from those weights, for the threshold methods and the target methods."""

import pytest
import torch

from pruning.pruning_fixtures import TinySpeechModel, default_groups, pruning_config
from pruning.test_baseline import write_run
from speechprune.pruning.magnitude import block_max_magnitude, expand_block_mask, percentile
from speechprune.pruning.methods.block import BLOCK_CAVEAT
from speechprune.pruning.predict import predict_pruning
from speechprune.pruning.schedules import GroupSchedule, eq1_start_slope, narang_threshold

SCHEDULE = {"start_itr": "10", "ramp_itr": "40", "end_itr": "80", "freq": 5}
TOTAL_STEPS = 100
LAST_UPDATE = 75  # the last multiple of freq strictly between start_itr and end_itr
GROUP_PATTERNS = {"recurrent": "weight_hh", "input": "weight_ih", "fc": "fc."}


def group_weights(model, group):
    return {name: p.detach() for name, p in model.named_parameters()
            if GROUP_PATTERNS[group] in name and p.dim() == 2}


def final_threshold(weight, schedule_cfg, block_shape=None):
    """Eq. 1 slopes from the 90th percentile of |w| (of block maxima for blocks), then the
    threshold of the last update: on frozen weights the rising threshold's last value decides."""
    magnitudes = weight.abs() if block_shape is None else block_max_magnitude(weight, block_shape)
    q = percentile(magnitudes, 90.0)
    schedule = GroupSchedule(start_itr=10, ramp_itr=40, end_itr=80, freq=schedule_cfg["freq"])
    theta = eq1_start_slope(q, schedule, 1.5)
    return narang_threshold(LAST_UPDATE, schedule, theta, 1.5 * theta)


@pytest.fixture
def baseline(tmp_path):
    torch.manual_seed(11)
    model = TinySpeechModel("gru", bidirectional=True, hidden=32)
    return model, write_run(tmp_path / "dense", model)


def test_narang_prediction_is_the_share_under_the_last_threshold_of_the_baseline(baseline):
    baseline_model, run_dir = baseline
    torch.manual_seed(0)
    model = TinySpeechModel("gru", bidirectional=True, hidden=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = pruning_config("narang", default_groups(**SCHEDULE), baseline=str(run_dir))
    prediction = predict_pruning(model, cfg, TOTAL_STEPS, steps_per_epoch=10)

    for group in GROUP_PATTERNS:
        weights = group_weights(baseline_model, group)
        pruned = sum(int((w.abs() <= final_threshold(w, SCHEDULE)).sum()) for w in weights.values())
        total = sum(w.numel() for w in weights.values())
        assert prediction.group_sparsity[group] == pytest.approx(pruned / total)
        # Eq. 1 brings the threshold to q (90th percentile) at end_itr; the last update, at
        # step 75, is at 17/18 q, so a little under 90% of these (uniform) weights fall.
        assert 0.8 < prediction.group_sparsity[group] <= 0.9
        assert prediction.group_params[group] == total
    # Non-zero parameters: the non-zeros outside the groups (the batch norm's zero bias is not
    # one) plus what the groups keep.
    grouped = {name for group in GROUP_PATTERNS for name in group_weights(baseline_model, group)}
    outside = sum(int((p != 0).sum()) for name, p in baseline_model.named_parameters()
                  if name not in grouped)
    kept = sum(round(prediction.group_params[g] * (1 - prediction.group_sparsity[g]))
               for g in GROUP_PATTERNS)
    assert prediction.total_params == sum(p.numel() for p in baseline_model.parameters())
    assert prediction.nonzero_params == outside + kept
    assert "baseline run" in prediction.source and not prediction.caveat
    # The model handed in is not touched.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_block_prediction_counts_whole_blocks_and_says_it_is_an_upper_bound(baseline):
    baseline_model, run_dir = baseline
    cfg = pruning_config("block", default_groups(**SCHEDULE), baseline=str(run_dir),
                         block_shape=[4, 4])
    prediction = predict_pruning(TinySpeechModel("gru", hidden=32), cfg, TOTAL_STEPS, 10)
    weights = group_weights(baseline_model, "recurrent")
    pruned = 0
    for w in weights.values():
        keep_blocks = block_max_magnitude(w, (4, 4)) > final_threshold(w, SCHEDULE, (4, 4))
        pruned += int((~expand_block_mask(keep_blocks, w, (4, 4))).sum())
    assert prediction.group_sparsity["recurrent"] == pytest.approx(
        pruned / sum(w.numel() for w in weights.values()))
    assert prediction.caveat == BLOCK_CAVEAT
    assert prediction.table().splitlines()[-1] == f"note: {BLOCK_CAVEAT}"


@pytest.mark.parametrize("method", ["gradual", "oneshot"])
def test_target_methods_predict_their_target(method):
    cfg = pruning_config(method, default_groups(**SCHEDULE, target_sparsity=0.8))
    prediction = predict_pruning(TinySpeechModel("gru", hidden=32), cfg, TOTAL_STEPS, 10)
    for group, sparsity in prediction.group_sparsity.items():
        assert sparsity == pytest.approx(0.8, abs=0.005), group
    assert "initial weights" in prediction.source


def test_table_lists_every_group_and_the_model():
    cfg = pruning_config("narang", default_groups(**SCHEDULE))
    table = predict_pruning(TinySpeechModel("gru", hidden=32), cfg, TOTAL_STEPS, 10).table()
    rows = [line.split()[0] for line in table.splitlines()[2:]]
    assert rows == ["recurrent", "input", "fc", "model"]
