"""A small trained run directory shared by the command tests of one session."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_helpers import TINY_MODEL, compose_train, corpus_overrides

from speechprune.training.loop import train
from speechprune.training.run_dir import RunDirectory


@pytest.fixture(scope="session")
def trained_run(micro_corpus, tmp_path_factory) -> Path:
    """A run directory of a tiny model trained for two epochs on the micro corpus."""
    run_dir = tmp_path_factory.mktemp("trained_run")
    cfg = compose_train(TINY_MODEL + corpus_overrides(micro_corpus) + ["trainer.epochs=2"])
    train(cfg, RunDirectory(run_dir))
    return run_dir
