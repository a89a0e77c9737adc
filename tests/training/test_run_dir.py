"""The run directory's lock: one training per directory, none left behind by a killed one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechprune.model.run_dir import RunDirectory, RunDirectoryInUse

from training_helpers import REPO, run_cli


def test_a_held_run_directory_refuses_a_second_lock_naming_the_holder(tmp_path):
    """Seen to fail: flock(LOCK_EX | LOCK_NB) replaced by `pass` (the second lock is taken)."""
    run = RunDirectory(tmp_path / "run")
    first = run.lock()
    with pytest.raises(RunDirectoryInUse) as busy:
        run.lock()
    assert str(busy.value).startswith(f"{run.path}: run directory in use by another training "
                                      f"(PID {os.getpid()} on host {socket.gethostname()})")
    first.release()
    run.lock().release()  # free again


# Takes the lock, starts a DataLoader whose two workers are forked with the lock's descriptor,
# and waits to be killed.
HOLDER_WITH_WORKERS = """
import sys, time
from pathlib import Path
import torch
from torch.utils.data import DataLoader
from speechprune.model.run_dir import RunDirectory

class Slow(torch.utils.data.Dataset):
    def __len__(self):
        return 1000
    def __getitem__(self, index):
        time.sleep(0.05)
        return index

lock = RunDirectory(Path(sys.argv[1])).lock()
batches = iter(DataLoader(Slow(), batch_size=2, num_workers=2))
next(batches)
print("ready", flush=True)
time.sleep(120)
"""


def test_a_sigkilled_holder_frees_the_directory_at_once_though_its_workers_live_on(tmp_path):
    """Seen to fail: the at-fork hook that closes the lock's descriptor in forked children
    removed (the directory stayed locked after the SIGKILL, by the orphaned workers)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER_WITH_WORKERS, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        workers = subprocess.run(["pgrep", "-P", str(holder.pid)], capture_output=True,
                                 text=True).stdout.split()
        assert len(workers) == 2
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert all(Path(f"/proc/{pid}").exists() for pid in workers)  # orphaned, not yet gone
    RunDirectory(tmp_path).lock().release()


def _lock_holder(run_dir: Path) -> int | None:
    try:
        return json.loads((run_dir / "train.lock").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow
def test_second_training_on_a_live_run_directory_exits_naming_the_other_process(
        tiny_train_overrides, tmp_path):
    """A second `speechprune train` on a directory a live training uses stops at once, with
    status 1 and one line naming the directory and the other process's PID and host; the
    first trains on, and once it is SIGKILLed the directory is free.

    Seen to fail: RunDirectory.lock taking no lock (the second run trained in the same
    directory until the test's timeout)."""
    run_dir = tmp_path / "run"
    common = tiny_train_overrides + ["trainer.epochs=1000", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([str(Path(sys.executable).parent / "speechprune"), "train", *common],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _lock_holder(run_dir) != first.pid:
            assert first.poll() is None, "the first training ended early"
            assert time.monotonic() < deadline
            time.sleep(0.05)

        second = run_cli("train", *common, timeout=60)
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"speechprune train: {run_dir}: run directory in use by another training "
            f"(PID {first.pid} on host {socket.gethostname()}); wait for it to end, or give "
            "this run another hydra.run.dir"], second.stderr[-2000:]
        assert first.poll() is None  # the first one trains on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    RunDirectory(run_dir).lock().release()
