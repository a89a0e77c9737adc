"""A really small corpus built once for the tests of this folder (a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechprune.config import CorpusConfig
from speechprune.corpus.build import build_corpus

SMALL_HOURS = 0.01  # about 36 s of audio, 15 utterances


def small_config(output_dir: Path, **overrides) -> CorpusConfig:
    settings = {"name": "tiny", "target_hours": SMALL_HOURS, "progress_every_s": 0.0}
    return CorpusConfig(output_dir=str(output_dir), **{**settings, **overrides})


@pytest.fixture(name="small_config")
def small_config_fixture():
    """The factory `small_config(output_dir, **overrides)` for tests that build their own."""
    return small_config


@pytest.fixture(scope="session")
def built_corpus(tmp_path_factory) -> Path:
    """A finished small `tiny` corpus built with two workers."""
    output_dir = tmp_path_factory.mktemp("tiny_corpus")
    result = build_corpus(small_config(output_dir, workers=2))
    assert result.complete
    return output_dir
