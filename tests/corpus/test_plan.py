"""The build plan: sized by target_hours, fixed by the seed, saved and checked on resume."""

from __future__ import annotations

import pytest

from speechprune.config import CorpusConfig
from speechprune.corpus.plan import (PlanError, estimate_seconds, load_plan, make_plan,
                                     plan_settings, save_plan)
from speechprune.corpus.prompts import Prompt
from speechprune.corpus.split import SplitError
from speechprune.corpus.voices import VoiceError


def test_the_plan_is_sized_by_target_hours():
    for hours in (0.05, 0.2):
        plan = make_plan(CorpusConfig(target_hours=hours))
        estimated = sum(estimate_seconds(Prompt(u.text, u.spoken)) for u in plan)
        assert hours * 3600 <= estimated < hours * 3600 + 10


def test_the_seed_fixes_the_plan():
    assert make_plan(CorpusConfig(target_hours=0.02)) == make_plan(CorpusConfig(target_hours=0.02))
    other = make_plan(CorpusConfig(target_hours=0.02, seed=99))
    assert {u.text for u in other} != {u.text for u in make_plan(CorpusConfig(target_hours=0.02))}


def test_rate_and_pitch_stay_in_the_configured_ranges():
    cfg = CorpusConfig(target_hours=0.05, rate_min=0.9, rate_max=1.0, pitch_min=-1, pitch_max=2)
    plan = make_plan(cfg)
    assert all(0.9 <= u.rate <= 1.0 and -1 <= u.pitch_semitones <= 2 for u in plan)
    assert len({u.rate for u in plan}) > len(plan) // 2


def test_a_saved_plan_loads_back_unchanged(tmp_path):
    cfg = CorpusConfig(target_hours=0.01)
    plan = make_plan(cfg)
    save_plan(plan, plan_settings(cfg), tmp_path / "plan.json")
    assert load_plan(tmp_path / "plan.json", plan_settings(cfg)) == plan


def test_settings_that_do_not_change_the_audio_may_change_on_resume(tmp_path):
    cfg = CorpusConfig(target_hours=0.01)
    save_plan(make_plan(cfg), plan_settings(cfg), tmp_path / "plan.json")
    resumed = CorpusConfig(target_hours=0.01, workers=1, output_dir="elsewhere", job_size=3)
    assert load_plan(tmp_path / "plan.json", plan_settings(resumed))


def test_an_unknown_corpus_name_is_an_error_listing_the_names():
    with pytest.raises(PlanError, match="'tiny' or 'sentences'"):
        make_plan(CorpusConfig(name="huge"))


@pytest.mark.parametrize("settings, error, key", [
    ({"unseen_natural_speakers": []}, SplitError, "corpus.unseen_natural_speakers"),
    ({"unseen_espeak_accents": [], "unseen_espeak_variants": []}, SplitError,
     "corpus.unseen_espeak_accents"),
    ({"unseen_fraction": 0.0}, SplitError, "corpus.unseen_fraction"),
    ({"unseen_natural_speakers": ["nobody"]}, VoiceError, "corpus.unseen_natural_speakers"),
    ({"unseen_espeak_variants": ["m1"]}, VoiceError, "corpus.unseen_espeak_variants"),
    ({"unseen_espeak_accents": ["en-us"]}, VoiceError, "corpus.unseen_espeak_accents"),
])
def test_an_unseen_voices_split_that_would_be_empty_or_overlap_is_an_error_naming_the_key(
        settings, error, key):
    """Seen to fail: without _check_unseen_split the first case planned an unseen split of
    espeak-ng voices only, and the overlap cases planned a split whose voices also train."""
    with pytest.raises(error, match=key):
        make_plan(CorpusConfig(target_hours=0.02, **settings))


def test_the_unseen_voices_split_gets_its_share_of_distinct_sentences():
    plan = make_plan(CorpusConfig(target_hours=0.2, unseen_fraction=0.15))
    unseen = [u for u in plan if u.split == "unseen_voices"]
    assert len(unseen) == round(0.15 * len(plan))
    assert not {u.text for u in unseen} & {u.text for u in plan if u.split != "unseen_voices"}
