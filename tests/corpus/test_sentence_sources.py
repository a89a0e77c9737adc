"""Sentences extracted from the Debian text packages, and a small `sentences` corpus."""

from __future__ import annotations

import json

import pytest

from speechprune.config import TextConfig
from speechprune.corpus.build import build_corpus
from speechprune.corpus.sentence_sources import (clean_prompt, fortune_paragraphs,
                                                 sentence_prompts, wordnet_examples)
from speechprune.data.text import Alphabet

ALPHABET = Alphabet.from_config(TextConfig())


def clean(sentence: str):
    return clean_prompt(sentence, TextConfig(), ALPHABET, 3, 20)


def test_sentences_are_normalized_with_numbers_written_out():
    assert clean("He was born in 1984, wasn't he?").text == \
        "he was born in nineteen eighty four wasn't he"


@pytest.mark.parametrize("sentence", [
    "The NASA launch was delayed.",  # acronym: read letter by letter
    "Mr Smith went home today.",  # abbreviation: read "mister"
    "x = y + 1 for all values",  # code
    "Too short.",
    " ".join(["word"] * 21),
])
def test_sentences_the_engines_would_not_read_as_written_are_dropped(sentence):
    assert clean(sentence) is None


def test_both_debian_sources_yield_sentences():
    assert sum(1 for _ in zip(range(100), fortune_paragraphs())) == 100
    assert sum(1 for _ in zip(range(100), wordnet_examples())) == 100


def test_the_sentence_pool_is_large_distinct_and_within_bounds():
    prompts = sentence_prompts(3, 20)
    assert len(prompts) > 10000  # enough for the default 5 hours
    assert len({p.text for p in prompts}) == len(prompts)
    assert all(3 <= len(p.text.split()) <= 20 for p in prompts)
    assert not any(ALPHABET.unknown_characters(p.text) for p in prompts)


def test_a_small_sentences_corpus_builds(tmp_path, small_config):
    cfg = small_config(tmp_path, name="sentences", target_hours=0.005)
    assert build_corpus(cfg).complete
    info = json.loads((tmp_path / "build_info.json").read_text())
    assert info["name"] == "sentences"
    texts = [json.loads(line)["text"] for line in (tmp_path / "train.jsonl").open()]
    assert all(3 <= len(text.split()) <= 20 for text in texts)
