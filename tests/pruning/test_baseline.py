import pytest
import torch

from pruning.pruning_fixtures import TinySpeechModel, default_groups, pruning_config
from speechprune.pruning import build_pruner
from speechprune.pruning.magnitude import percentile
from speechprune.pruning.schedules import eq1_start_slope

SCHEDULE = {"start_itr": "10", "ramp_itr": "40", "end_itr": "80", "freq": 5}


def write_run(run_dir, model):
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"model": model.state_dict(), "step": 123}, run_dir / "checkpoints" / "best.pt")
    return run_dir


def test_slopes_come_from_the_baseline_percentile_per_matrix(tmp_path, gru_model):
    torch.manual_seed(7)
    baseline_model = TinySpeechModel("gru", bidirectional=True)
    run_dir = write_run(tmp_path / "dense", baseline_model)
    cfg = pruning_config("narang", default_groups(**SCHEDULE), baseline=str(run_dir))
    pruner = build_pruner(gru_model, cfg, total_steps=100, steps_per_epoch=10)
    baseline_state = baseline_model.state_dict()
    for group in pruner.groups:
        assert group.slopes_from == "baseline"
        for matrix in group.matrices:
            q = percentile(baseline_state[matrix.name].abs(), 90.0)
            assert matrix.q == pytest.approx(q)
            assert matrix.start_slope == pytest.approx(eq1_start_slope(q, group.schedule, group.settings.ramp_multiplier))
            assert matrix.ramp_slope == pytest.approx(1.5 * matrix.start_slope)


def test_missing_baseline_checkpoint_says_what_to_give(tmp_path, gru_model):
    cfg = pruning_config("narang", default_groups(**SCHEDULE), baseline=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"pruning\.baseline=.*checkpoints/best\.pt"):
        build_pruner(gru_model, cfg, total_steps=100, steps_per_epoch=10)


def test_baseline_of_another_shape_is_refused(tmp_path, gru_model):
    run_dir = write_run(tmp_path / "dense", TinySpeechModel("gru", bidirectional=True, hidden=24))
    cfg = pruning_config("narang", default_groups(**SCHEDULE), baseline=str(run_dir))
    with pytest.raises(ValueError, match=r"'rnns\.0\.weight_hh_l0' has shape \(72, 24\) in the baseline but \(48, 16\)"):
        build_pruner(gru_model, cfg, total_steps=100, steps_per_epoch=10)


def test_baseline_of_another_architecture_is_refused(tmp_path, gru_model):
    run_dir = write_run(tmp_path / "dense", TinySpeechModel("gru", bidirectional=False))
    cfg = pruning_config("narang", default_groups(**SCHEDULE), baseline=str(run_dir))
    with pytest.raises(ValueError, match=r"no parameter 'rnns\.0\.weight_hh_l0_reverse'"):
        build_pruner(gru_model, cfg, total_steps=100, steps_per_epoch=10)
