"""Checkpoints are written atomically and read back safely."""

import pytest
import torch

from speechprune.training.checkpoint import (CheckpointError, load_checkpoint, resolve_checkpoint,
                                             save_checkpoint)


class Unpicklable:
    def __reduce__(self):
        raise RuntimeError("simulated crash while writing")


def test_round_trip_keeps_tensors_and_plain_data(tmp_path):
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 7, "name": "x"}
    save_checkpoint(state, tmp_path / "c" / "last.pt")
    loaded = load_checkpoint(tmp_path / "c" / "last.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["step"] == 7 and loaded["name"] == "x"


def test_failed_write_leaves_previous_checkpoint_and_no_temporary(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        save_checkpoint({"step": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_truncated_checkpoint_fails_with_its_path(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="last.pt: not a readable checkpoint"):
        load_checkpoint(path)


def test_missing_checkpoint_and_run_directory_errors(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="holds no checkpoints"):
        resolve_checkpoint(tmp_path)


def test_run_directory_resolves_to_best_then_last(tmp_path):
    save_checkpoint({"step": 1}, tmp_path / "checkpoints" / "last.pt")
    assert resolve_checkpoint(tmp_path).name == "last.pt"
    save_checkpoint({"step": 1}, tmp_path / "checkpoints" / "best.pt")
    assert resolve_checkpoint(tmp_path).name == "best.pt"
