"""speechprune.lm.scoring: loading a KenLM model and scoring sentences."""

from __future__ import annotations

import sys

import pytest

from speechprune.lm.files import LanguageModelError
from speechprune.lm.scoring import load_language_model, perplexity


def test_perplexity_is_lower_on_in_domain_text(domain_lm):
    model = load_language_model(domain_lm.binary)
    in_domain = perplexity(model, ["the cat sat on the mat", "the dog sat on the rug"])
    scrambled = perplexity(model, ["mat the on sat cat the", "rug the on sat dog the"])
    assert in_domain < scrambled / 10


def test_missing_kenlm_module_says_which_package_to_install(domain_lm, monkeypatch):
    monkeypatch.setitem(sys.modules, "kenlm", None)  # `import kenlm` now raises ImportError
    with pytest.raises(LanguageModelError, match="pip install kenlm-ex"):
        load_language_model(domain_lm.binary)


def test_missing_model_file_says_how_to_build_it(tmp_path):
    with pytest.raises(LanguageModelError, match=r"lm\.bin: language model not found.*lm build"):
        load_language_model(tmp_path / "lm.bin")
