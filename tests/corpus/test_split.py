"""Speaker splits."""

from __future__ import annotations

import random

import pytest

from speechprune.config import CorpusConfig
from speechprune.corpus.split import SplitError, split_counts, split_speakers
from speechprune.corpus.voices import voice_catalogue, voices_by_speaker

SPEAKERS = voices_by_speaker(voice_catalogue(CorpusConfig()))


def test_every_speaker_lands_in_exactly_one_split_with_a_natural_one_held_out_twice():
    splits = split_speakers(SPEAKERS, 0.1, 0.1, random.Random(0))
    assigned = [speaker for speakers in splits.values() for speaker in speakers]
    assert sorted(assigned) == sorted(SPEAKERS)
    for split in ("dev", "test"):
        assert sum(SPEAKERS[s][0].natural for s in splits[split]) == 1
    assert len(splits["train"]) > len(splits["dev"]) + len(splits["test"])


def test_the_same_person_in_two_engines_is_one_speaker():
    assert {voice.engine for voice in SPEAKERS["kal"]} == {"flite", "festival"}
    assert {voice.engine for voice in SPEAKERS["slt"]} == {"flite", "festival"}


def test_the_split_is_fixed_by_the_seed():
    assert split_speakers(SPEAKERS, 0.1, 0.1, random.Random(1)) == \
        split_speakers(SPEAKERS, 0.1, 0.1, random.Random(1))


def test_too_few_espeak_speakers_is_an_error_naming_the_fix():
    cfg = CorpusConfig(espeak_accents=["en-us"], espeak_variants=["m1", "m2"])
    speakers = voices_by_speaker(voice_catalogue(cfg))
    with pytest.raises(SplitError, match="espeak_variants"):
        split_speakers(speakers, 0.1, 0.1, random.Random(0))


def test_too_few_utterances_is_an_error_naming_the_fix():
    fractions = {"dev": 0.1, "test": 0.1, "unseen_voices": 0.1}
    with pytest.raises(SplitError, match="corpus.target_hours"):
        split_counts(7, fractions, minimum=2)
    assert split_counts(100, fractions, minimum=2) == {"train": 70, "dev": 10, "test": 10,
                                                       "unseen_voices": 10}
