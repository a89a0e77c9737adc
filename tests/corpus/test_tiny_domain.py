"""The AN4-like small-vocabulary domain."""

from __future__ import annotations

import random

from speechprune.config import TextConfig
from speechprune.corpus.tiny_domain import LETTER_NAMES, spelled, tiny_prompts
from speechprune.data.text import Alphabet


def test_prompts_are_distinct_and_fixed_by_the_seed():
    prompts = tiny_prompts(500, random.Random(3))
    assert len({p.text for p in prompts}) == 500
    assert prompts == tiny_prompts(500, random.Random(3))
    assert prompts != tiny_prompts(500, random.Random(4))


def test_a_shorter_list_is_a_prefix_of_a_longer_one():
    assert tiny_prompts(100, random.Random(5)) == tiny_prompts(300, random.Random(5))[:100]


def test_the_vocabulary_is_small_and_inside_the_alphabet():
    prompts = tiny_prompts(2000, random.Random(0))
    vocabulary = {word for p in prompts for word in p.text.split()}
    assert 60 < len(vocabulary) < 150
    alphabet = Alphabet.from_config(TextConfig())
    assert not any(alphabet.unknown_characters(p.text) for p in prompts)
    assert {"stop", "go", "repeat", "erase", "enter", "march", "twenty", "third"} <= vocabulary


def test_spelled_words_are_transcribed_as_letters_and_spoken_as_letter_names():
    prompt = spelled("pittsburgh")
    assert prompt.text == "p i t t s b u r g h"
    assert prompt.spoken.split(", ") == [LETTER_NAMES[letter] for letter in "pittsburgh"]
