"""Fixtures of the language-model tests: a KenLM model of a small text domain."""

from __future__ import annotations

import pytest
from lm.lm_test_support import build_domain_lm

from speechprune.lm.files import LmFiles


@pytest.fixture(scope="session")
def domain_lm(tmp_path_factory) -> LmFiles:
    return build_domain_lm(tmp_path_factory.mktemp("domain_lm"))
