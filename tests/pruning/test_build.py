from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pruning.pruning_fixtures import default_groups, pruning_config
from speechprune.config import PruningConfig
from speechprune.pruning import METHODS, build_pruner

PRESETS = Path(__file__).resolve().parents[2] / "conf" / "pruning"


def load_preset(name: str):
    """conf/pruning/<name>.yaml merged onto the schema its defaults list names."""
    preset = OmegaConf.load(PRESETS / f"{name}.yaml")
    schema = METHODS[name].config_class if name in METHODS else PruningConfig
    preset.pop("defaults", None)
    return OmegaConf.merge(OmegaConf.structured(schema), preset)


def test_none_builds_no_pruner(gru_model):
    assert build_pruner(gru_model, load_preset("none"), total_steps=100, steps_per_epoch=10) is None


@pytest.mark.parametrize("preset", ["narang", "gradual", "block", "l1", "oneshot"])
def test_every_preset_builds_on_a_bidirectional_gru(gru_model, preset):
    pruner = build_pruner(gru_model, load_preset(preset), total_steps=10_000, steps_per_epoch=1_000)
    assert pruner.name == preset
    assert [g.name for g in pruner.groups] == ["recurrent", "input", "fc"]


def test_narang_preset_resolves_the_paper_schedule(gru_model):
    pruner = build_pruner(gru_model, load_preset("narang"), total_steps=10_000, steps_per_epoch=1_000)
    schedule = pruner.groups[0].schedule
    assert (schedule.start_itr, schedule.ramp_itr, schedule.end_itr, schedule.freq) == (1_000, 2_500, 5_000, 100)


def bad(method="narang", **schedule):
    keys = {"start_itr": "10", "ramp_itr": "20", "end_itr": "40", "freq": 5}
    keys.update(schedule)
    return pruning_config(method, default_groups(**keys))


@pytest.mark.parametrize(
    "cfg, message",
    [
        (bad(ramp_itr="5"), r"pruning\.groups\.recurrent\.ramp_itr='5' \(5 steps\): ramp must not come before start_itr"),
        (bad(end_itr="15"), r"pruning\.groups\.recurrent\.end_itr='15' \(15 steps\): end must not come before ramp_itr"),
        (bad(end_itr="150%"), r"pruning\.groups\.recurrent\.end_itr='150%'.*at most 100%"),
        (bad(end_itr="101"), r"pruning\.groups\.recurrent\.end_itr='101' \(101 steps\): past the end of training"),
        (bad(freq=0), r"pruning\.groups\.recurrent\.freq=0: must be >= 1"),
        (bad(freq=50), r"pruning\.groups\.recurrent\.freq=50: no multiple of freq"),
        (bad(start_slope=-0.1), r"pruning\.groups\.recurrent\.start_slope=-0\.1: a slope must be >= 0"),
        (bad(start_slope=0.1, ramp_slope=-1.0), r"pruning\.groups\.recurrent\.ramp_slope=-1\.0: a slope must be >= 0"),
        (bad(percentile=0.0), r"pruning\.groups\.recurrent\.percentile=0\.0"),
        (bad("gradual", end_itr="100"), r"pruning\.groups\.recurrent\.end_itr='100'.*must be a step of the run"),
        (bad("gradual", start_itr="50", end_itr="40"), r"pruning\.groups\.recurrent\.end_itr='40' \(40 steps\): end must not come before start_itr"),
        (bad("oneshot", target_sparsity=1.0), r"pruning\.groups\.recurrent\.target_sparsity=1\.0"),
        (pruning_config("prune_all"), r"pruning\.method='prune_all': unknown method"),
        (pruning_config("narang", {}), r"pruning\.groups is empty"),
        (pruning_config("block", block_shape=[4]), r"pruning\.block_shape=\[4\]"),
        (pruning_config("narang", {"rnn": {"patterns": ["lstm.*"]}}), r"pruning\.groups\.rnn\.patterns"),
    ],
)
def test_a_schedule_that_cannot_work_stops_at_build_naming_group_and_key(gru_model, cfg, message):
    with pytest.raises(ValueError, match=message):
        build_pruner(gru_model, cfg, total_steps=100, steps_per_epoch=10)


def test_yaml_override_with_an_integer_step_is_accepted(gru_model):
    cfg = load_preset("narang")
    cfg.merge_with(OmegaConf.from_dotlist(["groups.recurrent.start_itr=30", "groups.recurrent.freq=10"]))
    pruner = build_pruner(gru_model, cfg, total_steps=1_000, steps_per_epoch=100)
    assert pruner.groups[0].schedule.start_itr == 30 and pruner.groups[0].schedule.freq == 10
