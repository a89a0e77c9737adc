"""speechprune.lm.build: text -> ARPA, KenLM binary, lexicon and character LM."""

from __future__ import annotations

import json
import random

import pytest
from lm.lm_test_support import DOMAIN_SENTENCES, build_domain_lm
from omegaconf import OmegaConf
from training_helpers import run_cli

from speechprune.config import LmBuildConfig
from speechprune.corpus.sentence_sources import sentence_prompts
from speechprune.data.text import TranscriptError
from speechprune.lm.build import build_language_model, character_sentence
from speechprune.lm.files import LanguageModelError
from speechprune.lm.scoring import load_language_model, sentence_log10_probability


def test_build_writes_arpa_binary_lexicon_and_character_lm(domain_lm):
    for path in (domain_lm.arpa, domain_lm.binary, domain_lm.lexicon, domain_lm.char_arpa,
                 domain_lm.char_binary, domain_lm.corpus):
        assert path.is_file() and path.stat().st_size > 0, path
    arpa_header = domain_lm.arpa.read_text()[:200]
    assert "\\data\\" in arpa_header and "ngram 3=" in arpa_header
    lexicon = dict(line.split(" ", 1) for line in domain_lm.lexicon.read_text().splitlines())
    words = {w for s in DOMAIN_SENTENCES for w in s.split()}
    assert set(lexicon) == words
    assert lexicon["cat"] == "c a t |"
    assert domain_lm.corpus.read_text().splitlines() == DOMAIN_SENTENCES
    assert character_sentence("to be") == "t o | b e"


def test_in_domain_sentences_score_higher_than_their_shuffled_words(tmp_path):
    rng = random.Random(3)
    subjects, verbs, objects = ["the cat", "a dog", "my friend", "the teacher"], \
        ["sees", "likes", "finds", "carries"], ["the ball", "a red box", "the old book", "my hat"]
    sentences = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
                 for _ in range(300)]
    files = build_domain_lm(tmp_path, sentences)
    model = load_language_model(files.binary)
    arpa_model = load_language_model(files.arpa)
    for sentence in sentences[:20]:
        words = sentence.split()
        shuffled = " ".join(reversed(words))
        assert sentence_log10_probability(model, sentence) > sentence_log10_probability(model, shuffled)
        # ARPA and binary are the same model.
        assert sentence_log10_probability(arpa_model, sentence) == pytest.approx(
            sentence_log10_probability(model, sentence), abs=1e-4)


def test_manifest_transcripts_are_normalized_like_training_text(tmp_path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": f"a{i}.wav", "duration": 1.0,
                                            "text": text}) + "\n"
                                for i, text in enumerate(["Turn LEFT at the 3rd light!",
                                                          "Don't stop."])))
    cfg = OmegaConf.structured(LmBuildConfig(manifests=[str(manifest)], output_dir=str(tmp_path / "lm"),
                                             char_order=0))
    files = build_language_model(cfg)
    assert files.corpus.read_text().splitlines() == ["turn left at the third light", "don't stop"]
    assert not files.char_binary.exists()


def test_sentences_of_excluded_manifests_are_left_out(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat\nThe test sentence.\nthe dog ran\n")
    held_out = tmp_path / "test.jsonl"
    held_out.write_text(json.dumps({"audio_filepath": "t.wav", "duration": 1.0,
                                    "text": "the test sentence"}) + "\n")
    cfg = OmegaConf.structured(LmBuildConfig(manifests=[], text_files=[str(text)],
                                             exclude_manifests=[str(held_out)],
                                             output_dir=str(tmp_path / "lm"), char_order=0))
    files = build_language_model(cfg)
    assert files.corpus.read_text().splitlines() == ["the cat sat", "the dog ran"]


def test_debian_text_adds_the_corpora_source_sentences_minus_the_excluded_ones(tmp_path):
    pool = [prompt.text for prompt in sentence_prompts(1, 10_000)]
    held_out = tmp_path / "test.jsonl"
    held_out.write_text("".join(json.dumps({"audio_filepath": f"t{i}.wav", "duration": 1.0,
                                            "text": pool[i]}) + "\n" for i in (0, 500)))
    cfg = OmegaConf.structured(LmBuildConfig(manifests=[], debian_text=True,
                                             exclude_manifests=[str(held_out)],
                                             output_dir=str(tmp_path / "lm"), char_order=0))
    files = build_language_model(cfg)
    corpus = files.corpus.read_text().splitlines()
    assert len(corpus) == len(pool) - 2 > 50_000
    assert pool[0] not in corpus and pool[500] not in corpus and pool[1] in corpus
    model = load_language_model(files.binary)
    in_domain = pool[1]
    assert sentence_log10_probability(model, in_domain) > sentence_log10_probability(
        model, " ".join(reversed(in_domain.split())))


def test_a_character_outside_the_alphabet_names_the_file_and_line(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("fine words\nnaïve café\n")
    cfg = OmegaConf.structured(LmBuildConfig(manifests=[], text_files=[str(text)],
                                             output_dir=str(tmp_path / "lm")))
    with pytest.raises(TranscriptError, match=rf"{text}:2: .*outside the alphabet"):
        build_language_model(cfg)


def test_missing_lmplz_fails_with_how_to_get_it(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    with pytest.raises(LanguageModelError, match=r"`lmplz` was not found .*make kenlm"):
        build_domain_lm(tmp_path, kenlm_bin_dir=str(empty_bin))


def test_missing_text_file_is_named(tmp_path):
    cfg = OmegaConf.structured(LmBuildConfig(manifests=[], text_files=[str(tmp_path / "no.txt")]))
    with pytest.raises(LanguageModelError, match=r"no\.txt: text file not found"):
        build_language_model(cfg)


def test_lm_build_command_without_kenlm_tools_exits_with_how_to_get_them(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat\n")
    result = run_cli("lm", "build", "manifests=[]", f"text_files=[{text}]",
                     f"output_dir={tmp_path / 'lm'}", f"kenlm_bin_dir={tmp_path}")
    assert result.returncode != 0
    assert "speechprune lm build: KenLM's `lmplz` was not found" in result.stderr
    assert "make kenlm" in result.stderr
