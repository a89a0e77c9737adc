"""speechprune.lm.build: text -> ARPA, KenLM binary, lexicon and character LM. The built files
are scored with the `kenlm` Python module directly, as any reader of them would."""

from __future__ import annotations

import json
import random

import kenlm
import pytest
from lm.lm_test_support import DOMAIN_SENTENCES, build_domain_lm
from omegaconf import OmegaConf
from training_helpers import run_cli

from speechprune.config import LmBuildConfig
from speechprune.corpus.sentence_sources import sentence_prompts
from speechprune.data.text import TranscriptError
from speechprune.lm.build import build_language_model, character_sentence
from speechprune.lm.files import LanguageModelError


def log10_probability(model: kenlm.Model, sentence: str) -> float:
    """log10 P(sentence), with sentence start and end markers."""
    return model.score(sentence, bos=True, eos=True)


def perplexity(model: kenlm.Model, sentences: list[str]) -> float:
    """Per-word perplexity, the end-of-sentence markers counted as words."""
    tokens = sum(len(sentence.split()) + 1 for sentence in sentences)
    return 10.0 ** (-sum(log10_probability(model, s) for s in sentences) / tokens)


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


def test_the_built_binary_loads_and_has_lower_perplexity_on_in_domain_text(domain_lm):
    """Seen to fail: `lm build` estimating the LM on each sentence's words reversed (corpus.txt
    unchanged): in-domain perplexity 21.2 against 1.7 scrambled."""
    model = kenlm.Model(str(domain_lm.binary))
    assert model.order == 3
    in_domain = perplexity(model, ["the cat sat on the mat", "the dog sat on the rug"])
    scrambled = perplexity(model, ["mat the on sat cat the", "rug the on sat dog the"])
    assert in_domain < scrambled / 10


def test_in_domain_sentences_score_higher_than_their_shuffled_words(tmp_path):
    """Seen to fail: `lm build` estimating the LM on each sentence's words reversed (corpus.txt
    unchanged): the reversed sentences then score higher."""
    rng = random.Random(3)
    subjects, verbs, objects = ["the cat", "a dog", "my friend", "the teacher"], \
        ["sees", "likes", "finds", "carries"], ["the ball", "a red box", "the old book", "my hat"]
    sentences = [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
                 for _ in range(300)]
    files = build_domain_lm(tmp_path, sentences)
    model = kenlm.Model(str(files.binary))
    arpa_model = kenlm.Model(str(files.arpa))
    for sentence in sentences[:20]:
        words = sentence.split()
        shuffled = " ".join(reversed(words))
        assert log10_probability(model, sentence) > log10_probability(model, shuffled)
        # ARPA and binary are the same model.
        assert log10_probability(arpa_model, sentence) == pytest.approx(
            log10_probability(model, sentence), abs=1e-4)


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


@pytest.mark.slow
def test_debian_text_adds_the_corpora_source_sentences_minus_the_excluded_ones(tmp_path):
    """Seen to fail: `lm build` estimating the LM on each sentence's words reversed (corpus.txt
    unchanged): the in-domain sentence then scores below its reversal."""
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
    model = kenlm.Model(str(files.binary))
    in_domain = pool[1]
    assert log10_probability(model, in_domain) > log10_probability(
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
