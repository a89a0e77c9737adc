"""The run directory: one place that owns what a training run leaves on disk, and the only
place that spells its names.

    <run>/config.yaml       resolved config         <run>/command.txt   the command line
    <run>/git.json          revision and diff state <run>/metrics.json  final figures
    <run>/checkpoints/      last.pt, best.pt        <run>/tensorboard/  event files
    <run>/train.lock        held by the training that uses the directory (its PID and host)
    <run>/train.log         Hydra's job log         <run>/evaluation/   `speechprune evaluate` output

It lives in model/, below pruning, inference, training and reports, because all of them find
files of a run (pruning its baseline's best.pt, inference a run's checkpoint, reports the
config and metrics). The lock stays with the class rather than in training/: `RunDirectory.lock`
is how a training takes the directory, train.lock is one of the directory's names, and the
lock needs nothing but the standard library, so keeping it here costs model/ no dependency,
while splitting it off would take a second class for the same directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from speechprune import atomic_write

CONFIG_FILE = "config.yaml"
COMMAND_FILE = "command.txt"
GIT_FILE = "git.json"
METRICS_FILE = "metrics.json"
LOCK_FILE = "train.lock"
LOG_FILE = "train.log"  # Hydra's job log, named after the `train` job
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_SUFFIX = ".pt"
TENSORBOARD_DIR = "tensorboard"
EVALUATION_DIR = "evaluation"


def checkpoint_file(name: str) -> str:
    """The file name of the checkpoint `name` ("last", "best") in checkpoints/."""
    return f"{name}{CHECKPOINT_SUFFIX}"


# Every name of the layout, and the checkpoints' paths relative to the run: no other module
# spells one of them (tests/test_run_paths.py checks).
RUN_LAYOUT_NAMES: tuple[str, ...] = (
    CONFIG_FILE, COMMAND_FILE, GIT_FILE, METRICS_FILE, LOCK_FILE, LOG_FILE, CHECKPOINTS_DIR,
    TENSORBOARD_DIR, EVALUATION_DIR,
    *(checkpoint_file(name) for name in ("last", "best")),
    *(f"{CHECKPOINTS_DIR}/{checkpoint_file(name)}" for name in ("last", "best")))


def git_state(repo: Path) -> dict[str, Any]:
    """Revision of the code that ran, and whether it had uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              timeout=10).stdout.strip()

    try:
        revision = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}
    if not revision:
        return {"revision": None, "dirty": None}
    diff = git("diff", "HEAD")
    return {"revision": revision, "dirty": bool(diff), "diff": diff}


class RunDirectoryInUse(ValueError):
    """Another live process trains in the run directory; the message names it."""


# Descriptors of the run locks this process holds: a forked child (a DataLoader worker) closes
# its inherited copies, or it would hold the lock on after its parent is killed.
_held_lock_descriptors: set[int] = set()


def _close_inherited_locks() -> None:
    for descriptor in _held_lock_descriptors:
        os.close(descriptor)
    _held_lock_descriptors.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


class RunLock:
    """An advisory lock (flock) on `<run>/train.lock`, held until `release` or until the
    process ends: the kernel drops it however the process dies (SIGKILL included), so a killed
    run never leaves a lock behind that would block its resume."""

    def __init__(self, lock_file: Path) -> None:
        self.lock_file = lock_file
        self.descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.descriptor, 4096, 0).decode(errors="replace")
            os.close(self.descriptor)
            raise RunDirectoryInUse(
                f"{lock_file.parent}: run directory in use by another training "
                f"({describe_holder(holder)}); wait for it to end, or give this run another "
                f"hydra.run.dir") from None
        _held_lock_descriptors.add(self.descriptor)
        os.ftruncate(self.descriptor, 0)
        os.pwrite(self.descriptor, json.dumps({"pid": os.getpid(),
                                               "host": socket.gethostname()}).encode(), 0)

    def release(self) -> None:
        # Only while this process holds it: in a forked child the number may name another file.
        if getattr(self, "descriptor", None) in _held_lock_descriptors:
            _held_lock_descriptors.discard(self.descriptor)
            os.close(self.descriptor)  # closing the last descriptor drops the lock

    __del__ = release


def describe_holder(lock_text: str) -> str:
    """"PID 123 on host x" from the text of a lock file (the holder may not have written it)."""
    try:
        holder = json.loads(lock_text)
        return f"PID {int(holder['pid'])} on host {holder['host']}"
    except (ValueError, KeyError, TypeError):
        return "PID and host not written yet"


@dataclass
class RunDirectory:
    path: Path

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    def lock(self) -> RunLock:
        """Take the directory for this process's training. Raises RunDirectoryInUse naming the
        PID and host of a live process that holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        return RunLock(self.lock_file)

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    def checkpoint(self, name: str) -> Path:
        """The checkpoint `name` ("last", "best") of the run."""
        return self.checkpoints / checkpoint_file(name)

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint("last")

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint("best")

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    @property
    def evaluation(self) -> Path:
        """Where `speechprune evaluate` writes, by default, for a checkpoint of this run."""
        return self.path / EVALUATION_DIR

    def record_start(self, cfg: DictConfig) -> None:
        """Save the resolved config, the command line and the git state of this start.

        A resumed run appends its command line, so the history of starts stays visible."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        with (self.path / COMMAND_FILE).open("a") as out:
            out.write(shlex.join(["speechprune", *sys.argv[0].split("-")[1:], *sys.argv[1:]]) + "\n")
        package_root = Path(__file__).resolve().parents[2]
        (self.path / GIT_FILE).write_text(json.dumps(git_state(package_root), indent=2))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        atomic_write.write_text(self.metrics_file, json.dumps(metrics, indent=2, sort_keys=True))

    def read_metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_file.read_text()) if self.metrics_file.is_file() else {}
