"""Finding finished training runs under the directories a user names, and reading them back.

A run directory is what `speechprune train` leaves (see `speechprune.model.run_dir`):
`config.yaml` (the resolved config), `metrics.json` (written when training finished) and
`tensorboard/` (event files). A sweep directory holds one run directory per job, at any depth.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from speechprune.model.run_dir import CONFIG_FILE, METRICS_FILE, TENSORBOARD_DIR, RunDirectory

log = logging.getLogger(__name__)


class RunCollectionError(ValueError):
    """A named directory is missing or holds no finished run."""


@dataclass
class Curve:
    """One scalar over training: `steps` (optimizer steps) and `values`, in step order."""

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class Run:
    """A finished run: where it is, the config it ran with and its final metrics."""

    path: Path
    name: str  # a short label: the path relative to the directory the user named
    config: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def model_name(self) -> str:
        """The model preset's name (`bigru`, `birnn`, ...)."""
        return str(self.config.get("model", {}).get("name", "model"))

    @property
    def hidden_size(self) -> int:
        return int(self.config.get("model", {}).get("hidden_size", 0))

    @property
    def pruning_method(self) -> str:
        return str(self.config.get("pruning", {}).get("method", "none"))

    @property
    def is_dense(self) -> bool:
        return self.pruning_method == "none"

    @property
    def family(self) -> str:
        """Model and kind together (`bigru dense`, `bigru sparse`): the series of the frontier
        plot and the unit of the WER-against-size fit."""
        return f"{self.model_name} {'dense' if self.is_dense else 'sparse'}"

    @property
    def pruning_groups(self) -> list[str]:
        return list((self.config.get("pruning", {}).get("groups") or {}).keys())

    @property
    def tensorboard(self) -> Path:
        return RunDirectory(self.path).tensorboard


def find_run_directories(root: Path) -> list[Path]:
    """`root` itself when it is a run directory, else every run directory below it (sorted)."""
    run = RunDirectory(root)
    if run.config_file.is_file() and run.tensorboard.is_dir():
        return [root]
    return sorted(p.parent for p in root.rglob(CONFIG_FILE)
                  if RunDirectory(p.parent).tensorboard.is_dir())


def load_run(path: Path, label: str) -> Run | None:
    """The run at `path`, or None (with a warning) when it has not finished (no metrics.json)."""
    run_dir = RunDirectory(path)
    metrics = run_dir.read_metrics()
    if not metrics:
        log.warning("%s has no %s (still training, or stopped): left out", path, METRICS_FILE)
        return None
    config = yaml.safe_load(run_dir.config_file.read_text()) or {}
    return Run(path=path, name=label, config=config, metrics=metrics)


def collect_runs(directories: list[str | Path]) -> list[Run]:
    """Every finished run in `directories` (run or sweep directories), each once, in order.

    Raises RunCollectionError naming the directory when one does not exist or when none of them
    holds a finished run."""
    if not directories:
        raise RunCollectionError("no directories given: `speechprune report <sweep or run dir> ...`")
    runs: list[Run] = []
    seen: set[Path] = set()
    for directory in directories:
        root = Path(directory)
        if not root.is_dir():
            raise RunCollectionError(f"{root}: no such directory; give a run directory "
                                     f"(holding {CONFIG_FILE} and {METRICS_FILE}) or a sweep "
                                     "directory")
        found = find_run_directories(root)
        if not found:
            log.warning("%s holds no run directory (%s next to %s/)", root, CONFIG_FILE,
                        TENSORBOARD_DIR)
        for path in found:
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            label = str(path.relative_to(root)) if path != root else root.name
            if len(directories) > 1 and path != root:
                label = f"{root.name}/{label}"
            run = load_run(path, label)
            if run is not None:
                runs.append(run)
    if not runs:
        raise RunCollectionError(f"no finished run (a run directory with {METRICS_FILE}) in "
                                 f"{', '.join(str(d) for d in directories)}")
    return runs


def read_curves(run: Run, tags: list[str]) -> dict[str, Curve]:
    """The scalars `tags` of a run's event files (those present), read with TensorBoard's own
    reader. A resumed run's events are already purged of the redone steps by the writer."""
    import tensorboard
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # Its directory watcher logs a line per event file at INFO ("No path found after ...").
    logging.getLogger(tensorboard.__name__).setLevel(logging.WARNING)
    # size_guidance 0: keep every point, not TensorBoard's default reservoir sample.
    events = EventAccumulator(str(run.tensorboard), size_guidance={"scalars": 0})
    events.Reload()
    available = set(events.Tags().get("scalars", []))
    curves: dict[str, Curve] = {}
    for tag in tags:
        if tag in available:
            points = events.Scalars(tag)
            curves[tag] = Curve([p.step for p in points], [p.value for p in points])
    return curves
