"""Every experiment preset under conf/experiment composes against the typed schema."""

from __future__ import annotations

import pytest

from training_helpers import REPO, compose_train

EXPERIMENTS = REPO / "conf" / "experiment"
# Shared parts that the Table 3 presets include; not meant to be run on their own.
PARTS = {"table3/common", "table3/sparse"}
PRESETS = sorted(set(path.relative_to(EXPERIMENTS).with_suffix("").as_posix()
                     for path in EXPERIMENTS.rglob("*.yaml")) - PARTS)


def test_the_presets_are_found():
    assert {"quickstart", "quickstart_narang", "quickstart_block", "table3/bigru_sparse"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_composes_against_the_schema(preset):
    cfg = compose_train([f"experiment={preset}"])
    assert isinstance(cfg.experiment_name, str) and cfg.experiment_name
    assert cfg.trainer.epochs > 0


def test_block_presets_are_the_narang_quickstart_pair_with_4x4_blocks():
    narang = compose_train(["experiment=quickstart_narang"])
    block = compose_train(["experiment=quickstart_block"])
    long_block = compose_train(["experiment=quickstart_long_block"])
    assert (block.pruning.method, list(block.pruning.block_shape)) == ("block", [4, 4])
    assert block.model == narang.model and block.trainer.epochs == narang.trainer.epochs
    for name, group in block.pruning.groups.items():
        assert group.freq == narang.pruning.groups[name].freq == 10
    assert long_block.trainer.epochs == 24 and long_block.pruning.method == "block"
