"""Fixtures of the training tests."""

from __future__ import annotations

import pytest
from training_helpers import TINY_MODEL, corpus_overrides


@pytest.fixture
def tiny_train_overrides(micro_corpus) -> list[str]:
    return TINY_MODEL + corpus_overrides(micro_corpus)
