"""Transcript normalization, the CTC alphabet and the CTC length bound."""

from __future__ import annotations

import pytest

from speechprune.config import TextConfig
from speechprune.data.text import Alphabet, TranscriptError, ctc_min_frames, normalize_text


@pytest.mark.parametrize("raw, normalized", [
    ("I have 3 cats", "i have three cats"),
    ("Born in 1984.", "born in nineteen eighty four"),
    ("the 3rd time", "the third time"),
    ("21 days", "twenty one days"),
    ("2.5 kilos", "two point five kilos"),
    ("1,200 people", "one thousand two hundred people"),
])
def test_numbers_are_written_as_words(raw, normalized):
    assert normalize_text(raw, TextConfig()) == normalized


@pytest.mark.parametrize("raw, normalized", [
    ("Hello, world!", "hello world"),
    ("Wait... what?!  Really;", "wait what really"),
    ("state-of-the-art", "state of the art"),
    ('"Quoted" (words)', "quoted words"),
])
def test_punctuation_becomes_space_and_spaces_collapse(raw, normalized):
    assert normalize_text(raw, TextConfig()) == normalized


@pytest.mark.parametrize("raw, normalized", [
    ("Don't stop", "don't stop"),
    ("'Tis the children's toys'", "tis the children's toys"),
    ("the dogs' 'bone'", "the dogs bone"),
])
def test_apostrophes_stay_only_inside_words(raw, normalized):
    assert normalize_text(raw, TextConfig()) == normalized


def test_apostrophes_inside_upper_case_words_stay_when_case_is_kept():
    cfg = TextConfig(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ' ", lowercase=False,
                     numbers_to_words=False)
    assert normalize_text("DON'T 'GO'", cfg) == "DON'T GO"


def test_normalization_steps_can_be_switched_off():
    cfg = TextConfig(lowercase=False, numbers_to_words=False, strip_punctuation=False)
    assert normalize_text("  Hi,  5 Cats!  ", cfg) == "Hi, 5 Cats!"


def test_alphabet_has_the_blank_at_index_0_and_round_trips_text():
    alphabet = Alphabet.from_config(TextConfig())
    assert alphabet.blank == 0 and len(alphabet) == 29  # 26 letters, apostrophe, space, blank
    labels = alphabet.encode("don't panic")
    assert 0 not in labels and alphabet.decode(labels) == "don't panic"


def test_unknown_character_error_names_the_place_and_the_fix():
    alphabet = Alphabet.from_config(TextConfig())
    text = normalize_text("Café au lait", TextConfig())
    with pytest.raises(TranscriptError, match=r"train\.csv:4: .*\['é'\].*out_of_alphabet=drop"):
        alphabet.encode(text, where="train.csv:4")


def test_unknown_characters_are_dropped_when_configured():
    alphabet = Alphabet.from_config(TextConfig(out_of_alphabet="drop"))
    assert alphabet.decode(alphabet.encode("café")) == "caf"


def test_alphabet_rejects_repeated_symbols_and_unknown_policies():
    with pytest.raises(ValueError, match="repeated character"):
        Alphabet.from_config(TextConfig(alphabet="abca"))
    with pytest.raises(ValueError, match="out_of_alphabet must be"):
        Alphabet.from_config(TextConfig(out_of_alphabet="ignore"))


@pytest.mark.parametrize("text, frames", [("", 0), ("cat", 3), ("hello", 6), ("aaa", 5)])
def test_ctc_needs_a_blank_between_repeated_neighbours(text, frames):
    alphabet = Alphabet.from_config(TextConfig())
    assert ctc_min_frames(alphabet.encode(text)) == frames
