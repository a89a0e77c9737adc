"""The method registry (speechprune/pruning/methods/): every preset builds its method, each
method's config holds only its own keys, a method added in one file works end to end, and the
pruner's state survives a round trip (and version 1 states still load)."""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, field

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from training_helpers import REPO, compose_train

from pruning.pruning_fixtures import TinySpeechModel, default_groups, pruning_config, train_steps
from speechprune.config import DensePruningConfig, PruningConfig, PruningGroupConfig, register_configs
from speechprune.pruning import METHODS, build_pruner, register_method_configs
from speechprune.pruning.pruner import PrunedGroup, Pruner, register_method
from speechprune.pruning.schedules import GroupSchedule

PRESETS = sorted(path.stem for path in (REPO / "conf" / "pruning").glob("*.yaml") if path.stem != "none")
SCHEDULE = {"start_itr": "5", "ramp_itr": "15", "end_itr": "30", "freq": 5, "target_sparsity": 0.7,
            "percentile": 60.0}
TOTAL_STEPS = 40


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def test_every_pruning_preset_composes_to_its_methods_config_and_builds_its_method(gru_model):
    """Seen to fail: `@register_method` taken off OneshotPruner (pruning=oneshot could not load
    pruning/oneshot_schema, and no preset may lack its method)."""
    assert set(PRESETS) == set(METHODS) == {"narang", "block", "gradual", "l1", "oneshot"}
    for name in PRESETS:
        cfg = compose_train([f"pruning={name}"]).pruning
        assert OmegaConf.get_type(cfg) is METHODS[name].config_class, name
        assert cfg.method == name
        pruner = build_pruner(gru_model, cfg, total_steps=10_000, steps_per_epoch=1_000)
        assert type(pruner) is METHODS[name]
    assert OmegaConf.get_type(compose_train(["pruning=none"]).pruning) is DensePruningConfig


def test_a_group_key_of_the_method_overrides_from_the_command_line():
    cfg = compose_train(["pruning=gradual", "pruning.groups.recurrent.target_sparsity=0.8"]).pruning
    assert cfg.groups.recurrent.target_sparsity == 0.8


@pytest.mark.parametrize("preset, override, key", [
    ("narang", "pruning.l1_strength=1e-5", "l1_strength"),
    ("narang", "pruning.block_shape=[2,2]", "block_shape"),
    ("gradual", "pruning.groups.recurrent.ramp_itr=10", "ramp_itr"),
    ("oneshot", "pruning.groups.recurrent.freq=10", "freq"),
    ("l1", "pruning.groups.fc.percentile=80", "percentile"),
])
def test_a_key_the_method_does_not_read_is_a_hydra_error_naming_it(preset, override, key):
    """Seen to fail: `l1_strength: float = 1e-5` added to NarangConfig (the override composed)."""
    with pytest.raises(ConfigCompositionException) as error:
        compose_train([f"pruning={preset}", override])
    assert f"Could not override '{override.split('=')[0]}'" in str(error.value)
    assert f"Key '{key}' not in" in str(error.value.__cause__)


@pytest.mark.parametrize("preset, override, message", [
    ("narang", "+pruning.l1_strength=1e-5", r"pruning\.l1_strength: pruning=narang has no such setting"),
    ("gradual", "+pruning.groups.recurrent.ramp_itr=10",
     r"pruning\.groups\.recurrent\.ramp_itr: pruning=gradual has no such setting"),
])
def test_a_key_added_with_plus_stops_the_build_naming_it(gru_model, preset, override, message):
    """Hydra lets `+key=value` add a key even to a typed node; build_pruner refuses it.

    Seen to fail: typed_config without its check of unknown keys (the pruner was built)."""
    cfg = compose_train([f"pruning={preset}", override]).pruning
    with pytest.raises(ValueError, match=message):
        build_pruner(gru_model, cfg, total_steps=10_000, steps_per_epoch=1_000)


def test_the_method_is_chosen_by_its_preset_not_by_pruning_method(gru_model):
    cfg = compose_train(["pruning=gradual", "pruning.method=narang"]).pruning
    with pytest.raises(ValueError, match=r"pruning\.method='narang', but the pruning settings are GradualConfig's"):
        build_pruner(gru_model, cfg, total_steps=10_000, steps_per_epoch=1_000)


# ---- a method added in one file (this one): nothing else is edited -------------------------


@dataclass
class CutoffGroupConfig(PruningGroupConfig):
    cutoff: float = 0.05  # |w| below this is pruned, every step from start_itr to end_itr


@dataclass
class CutoffConfig(PruningConfig):
    method: str = "cutoff"
    groups: dict[str, CutoffGroupConfig] = field(default_factory=dict)


class CutoffPruner(Pruner):
    name = "cutoff"
    config_class = CutoffConfig
    schedule_keys = ("start_itr", "end_itr")

    def update_group(self, group: PrunedGroup, itr: int) -> None:
        if group.schedule.start_itr <= itr < group.schedule.end_itr:
            for matrix in group.matrices:
                matrix.mask &= matrix.param.detach().abs() >= group.settings.cutoff
            group.pruned_once = True


@pytest.fixture
def cutoff_method():
    register_method(CutoffPruner)
    yield CutoffPruner
    del METHODS["cutoff"]


CUTOFF_YAML = """defaults:
  - cutoff_schema
  - _self_

groups:
  rnn:
    patterns: ["rnns.*weight*"]
    cutoff: 0.1
    start_itr: 2
    end_itr: 6
"""


def test_a_method_added_as_one_module_and_one_config_file_trains_through_the_real_pruner(
        cutoff_method, tmp_path):
    """This module's CutoffPruner and conf/pruning/cutoff.yaml (in a copy of conf/) are all
    that `pruning=cutoff` needs.

    Seen to fail: Pruner.step without apply_masks (pruned weights were not zero)."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    (conf / "pruning" / "cutoff.yaml").write_text(CUTOFF_YAML)
    register_configs()
    register_method_configs()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["pruning=cutoff"]).pruning
    assert OmegaConf.get_type(cfg) is CutoffConfig
    torch.manual_seed(0)
    model = TinySpeechModel("gru")
    pruner = build_pruner(model, cfg, total_steps=10, steps_per_epoch=5)
    assert type(pruner) is CutoffPruner and pruner.groups[0].schedule == GroupSchedule(2, None, 6, None)
    train_steps(model, sgd(model), pruner, range(10))
    for matrix in pruner.groups[0].matrices:
        assert 0 < int((~matrix.mask).sum()) < matrix.mask.numel()
        assert (matrix.param.detach()[~matrix.mask] == 0).all()
        assert (matrix.param.detach()[matrix.mask] != 0).all()
    assert pruner.scalars()["target_sparsity/rnn"] == 0.0 and pruner.masks_final


# ---- state -----------------------------------------------------------------------------------


def trained(method: str, steps: int):
    torch.manual_seed(0)
    model = TinySpeechModel("gru")
    pruner = build_pruner(model, pruning_config(method, default_groups(**SCHEDULE)), TOTAL_STEPS, steps_per_epoch=10)
    optimizer = sgd(model)
    train_steps(model, optimizer, pruner, range(steps))
    return model, optimizer, pruner


def resume(model, optimizer, state: dict, method: str):
    """A fresh pruner on a copy of the model, loaded with `state`."""
    model_copy = copy.deepcopy(model)
    optimizer_copy = sgd(model_copy)
    optimizer_copy.load_state_dict(copy.deepcopy(optimizer.state_dict()))  # own momentum buffers
    pruner = build_pruner(model_copy, pruning_config(method, default_groups(**SCHEDULE)), TOTAL_STEPS, steps_per_epoch=10)
    pruner.load_state_dict(state)
    return model_copy, optimizer_copy, pruner


def assert_same(pruner_a, model_a, pruner_b, model_b):
    for (name, p), (_, q) in zip(model_a.named_parameters(), model_b.named_parameters()):
        assert torch.equal(p, q), name
    for group_a, group_b in zip(pruner_a.groups, pruner_b.groups):
        assert group_a.current_target == group_b.current_target and group_a.cut_done == group_b.cut_done
        for m, r in zip(group_a.matrices, group_b.matrices):
            assert torch.equal(m.mask, r.mask) and m.threshold == r.threshold and m.start_slope == r.start_slope
    assert pruner_a.scalars() == pruner_b.scalars()


@pytest.mark.parametrize("method", sorted(METHODS))
def test_state_dict_round_trips_through_torch_save_and_training_continues_alike(method, tmp_path):
    """Seen to fail: _load_group without restoring current_target (gradual's group state and
    target_sparsity scalar differed after loading)."""
    model, optimizer, pruner = trained(method, 20)
    torch.save(pruner.state_dict(), tmp_path / "pruner.pt")
    state = torch.load(tmp_path / "pruner.pt", weights_only=True)
    assert state["version"] == 2
    model_b, optimizer_b, pruner_b = resume(model, optimizer, state, method)
    assert_same(pruner, model, pruner_b, model_b)
    train_steps(model, optimizer, pruner, range(20, TOTAL_STEPS))
    train_steps(model_b, optimizer_b, pruner_b, range(20, TOTAL_STEPS))
    assert_same(pruner, model, pruner_b, model_b)
    assert pruner.scalars()["sparsity/recurrent"] > 0.0


def as_version_1(state: dict, ramp_itr: int, freq: int) -> dict:
    """The documented version 1 layout: the same state with every schedule entry a number
    ([start, ramp, end, freq] in steps; version 1 resolved ramp_itr and freq for every method)."""
    old = copy.deepcopy(state)
    old["version"] = 1
    for group in old["groups"].values():
        start, ramp, end, group_freq = group["schedule"]
        group["schedule"] = [start, ramp if ramp is not None else ramp_itr, end,
                             group_freq if group_freq is not None else freq]
    return old


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_version_1_state_resumes_and_continues_alike(method):
    """Seen to fail: _load_group comparing the saved schedule whole (a version 1 state of
    gradual, oneshot or l1 was refused as saved under another schedule)."""
    model, optimizer, pruner = trained(method, 20)
    model_b, optimizer_b, pruner_b = resume(model, optimizer, as_version_1(pruner.state_dict(), 10, 100), method)
    train_steps(model, optimizer, pruner, range(20, TOTAL_STEPS))
    train_steps(model_b, optimizer_b, pruner_b, range(20, TOTAL_STEPS))
    assert_same(pruner, model, pruner_b, model_b)


def test_a_version_1_state_under_another_schedule_is_still_refused():
    model, optimizer, pruner = trained("gradual", 20)
    old = as_version_1(pruner.state_dict(), 10, 100)
    old["groups"]["fc"]["schedule"][2] = 31
    with pytest.raises(ValueError, match=r"group 'fc' was saved with \(start_itr, end_itr, freq\) = \[5, 31, 5\]"):
        resume(model, optimizer, old, "gradual")


def test_a_state_of_an_unknown_version_is_refused():
    model, optimizer, pruner = trained("narang", 1)
    state = pruner.state_dict() | {"version": 3}
    with pytest.raises(ValueError, match="pruner state version 3: this speechprune reads versions 1, 2"):
        resume(model, optimizer, state, "narang")
