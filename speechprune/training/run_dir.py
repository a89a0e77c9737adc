"""The run directory: one place that owns what a training run leaves on disk.

    <run>/config.yaml       resolved config         <run>/command.txt   the command line
    <run>/git.json          revision and diff state <run>/metrics.json  final figures
    <run>/checkpoints/      last.pt, best.pt        <run>/tensorboard/  event files
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


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


@dataclass
class RunDirectory:
    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    def record_start(self, cfg: DictConfig) -> None:
        """Save the resolved config, the command line and the git state of this start.

        A resumed run appends its command line, so the history of starts stays visible."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        with (self.path / "command.txt").open("a") as out:
            out.write(shlex.join(["speechprune", *sys.argv[0].split("-")[1:], *sys.argv[1:]]) + "\n")
        package_root = Path(__file__).resolve().parents[2]
        (self.path / "git.json").write_text(json.dumps(git_state(package_root), indent=2))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        temporary = self.metrics_file.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(metrics, indent=2, sort_keys=True))
        temporary.replace(self.metrics_file)

    def read_metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_file.read_text()) if self.metrics_file.is_file() else {}
