"""Fixtures of the report tests: one real two-job sweep of a tiny model, shared by the module's
tests (training it is the slow part)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from training_helpers import TINY_MODEL, corpus_overrides, run_cli

# Every group pruned from the first step on, updated every step, finished at 75% of the run,
# towards the median |w| (a tiny run's weights are far from a trained baseline's 90th percentile).
FAST_SCHEDULE = {g: {"start_itr": 0, "ramp_itr": "50%", "end_itr": "75%", "freq": 1,
                     "percentile": 50} for g in ("recurrent", "input", "fc")}


def write_test_experiment(conf_dir: Path, corpus: Path) -> str:
    """An experiment preset holding every fixed setting of the sweep, so the job folders are
    named after the swept key alone (`experiment` is left out of the folder names)."""
    settings: dict = {"experiment_name": "report_test"}
    for override in TINY_MODEL + corpus_overrides(corpus) + ["trainer.epochs=3"]:
        key, value = override.split("=", 1)
        key = key.lstrip("+")  # a preset adds keys without Hydra's `++`
        *parents, leaf = key.split(".")
        node = settings
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    settings["pruning"] = {"groups": FAST_SCHEDULE}
    path = conf_dir / "experiment" / "report_test.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# @package _global_\n" + yaml.safe_dump(settings))
    return "report_test"


@pytest.fixture(scope="session")
def test_experiment(micro_corpus, tmp_path_factory) -> Path:
    """A config directory holding `experiment=report_test` (pass it with --config-dir)."""
    conf_dir = tmp_path_factory.mktemp("conf")
    write_test_experiment(conf_dir, micro_corpus)
    return conf_dir


@pytest.fixture(scope="session")
def two_job_sweep(test_experiment, tmp_path_factory) -> Path:
    """`speechprune train -m pruning=none,narang` of the tiny test model: a dense and a
    pruned run in one sweep directory."""
    sweep_dir = tmp_path_factory.mktemp("sweep") / "multirun"
    result = run_cli("train", "-m", "--config-dir", str(test_experiment), "experiment=report_test",
                     "pruning=none,narang", f"hydra.sweep.dir={sweep_dir}", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir
