"""Checkpoints are written atomically and read back safely."""

import errno
import os
import resource

import pytest
import torch

from speechprune import atomic_write
from speechprune.model.checkpoint import (CheckpointError, CheckpointWriteError,
                                          load_checkpoint, resolve_checkpoint, save_checkpoint)
from speechprune.model.run_dir import RunDirectory
from speechprune.training.loop import train

from training_helpers import compose_train, run_cli


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


class FullDisk:
    """A file whose device fills up after `room` bytes: the write that crosses the limit
    writes what fits, then fails with ENOSPC, as write(2) on a full disk does."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def write(self, data) -> int:
        data = memoryview(data).cast("B")
        if len(data) > self.room:
            self.file.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def test_disk_full_half_way_keeps_the_previous_checkpoint_and_names_the_path(tmp_path,
                                                                            monkeypatch):
    """The disk fills up 20,000 bytes into a checkpoint write: the error names the file, the
    previous checkpoint is left byte for byte and the temporary file is gone.

    Seen to fail: the write going straight to `path` (no temporary file, no
    rename): the previous checkpoint's bytes were overwritten by the part that fitted."""
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1, "w": torch.ones(10_000)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(atomic_write, "open",
                        lambda *args, **kwargs: FullDisk(open(*args, **kwargs), 20_000),
                        raising=False)
    with pytest.raises(CheckpointWriteError) as full:
        save_checkpoint({"step": 2, "w": torch.zeros(10_000)}, path)
    monkeypatch.undo()
    assert str(full.value).startswith(f"{path}: checkpoint not written (No space left on device)")
    assert full.value.__cause__.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def _limit_file_size(size: int):
    """A preexec_fn: files of the child may not grow past `size` bytes (a write past it fails
    with EFBIG; Python ignores the SIGXFSZ that would otherwise kill the process)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.slow
def test_training_whose_checkpoint_cannot_be_written_resumes_from_the_previous_one(
        tiny_train_overrides, tmp_path):
    """A run trained for one epoch is extended to two under a file size limit below a
    checkpoint's size: its first checkpoint write fails half-way, the command stops with one
    line naming the file, the epoch-1 checkpoint is untouched and no temporary file is left;
    the same command without the limit resumes from it and finishes.

    Seen to fail: the write going straight to `path` (last.pt overwritten by the
    part that fitted); the CheckpointWriteError wrapping removed (a traceback ending in torch's
    zip writer RuntimeError, naming no file)."""
    common = tiny_train_overrides + ["trainer.checkpoint_every_steps=1"]
    train(compose_train(common + ["trainer.epochs=1"]), RunDirectory(tmp_path))
    common.append(f"hydra.run.dir={tmp_path}")
    last = tmp_path / "checkpoints/last.pt"
    before = last.read_bytes()
    epoch_steps = load_checkpoint(last)["state"]["step"]
    limit = len(before) * 3 // 4
    # What else the run writes stays below the limit (git.json holds the working tree's diff).
    assert all(p.stat().st_size < limit for p in tmp_path.rglob("*")
               if p.is_file() and p.suffix != ".pt")

    full = run_cli("train", *common, "trainer.epochs=2", preexec_fn=_limit_file_size(limit))
    assert full.returncode == 1
    assert (f"speechprune train: {last}: checkpoint not written (File too large); the last.pt "
            "there before is kept\n") in full.stderr, full.stderr[-3000:]
    assert "Traceback" not in full.stderr
    assert last.read_bytes() == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]

    resumed = run_cli("train", *common, "trainer.epochs=2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (f"resumed from {last} at epoch 1, batch 0, step {epoch_steps}"
            in resumed.stdout + resumed.stderr)
    assert load_checkpoint(last)["state"]["step"] == 2 * epoch_steps


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
