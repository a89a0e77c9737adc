"""Fixtures shared across the test suite: a micro corpus of real synthesized speech."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechprune.config import CorpusConfig


@pytest.fixture(scope="session")
def micro_corpus(tmp_path_factory) -> Path:
    """A few dozen seconds of the `tiny` domain, synthesized by the real corpus builder once
    per test session (per xdist worker): train/dev/test manifests with FLAC audio."""
    from speechprune.corpus.build import build_corpus

    output_dir = tmp_path_factory.mktemp("micro_corpus")
    result = build_corpus(CorpusConfig(name="tiny", output_dir=str(output_dir),
                                       target_hours=0.02, workers=2, seed=7))
    assert result.complete
    return output_dir
