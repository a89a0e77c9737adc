"""speechprune.decoding.beam: beam search with a KenLM language model, and choosing a decoder."""

from __future__ import annotations

import sys

import pytest
import torch
from lm.lm_test_support import ALPHABET, AMBIGUOUS, beam_config, build_domain_lm, emissions, spelled
from omegaconf import OmegaConf

from speechprune.config import DecoderConfig
from speechprune.decoding.beam import BeamSearchDecoder, build_decoder, resolve_weights
from speechprune.decoding.greedy import greedy_decode
from speechprune.lm.files import LanguageModelError, write_decoder_params


@pytest.fixture(scope="module")
def domain_lm(tmp_path_factory):
    return build_domain_lm(tmp_path_factory.mktemp("beam_lm"))


def lengths_of(log_probs: torch.Tensor) -> torch.Tensor:
    return torch.tensor([log_probs.shape[1]])


def test_greedy_gets_the_ambiguous_emission_wrong():
    log_probs = emissions(AMBIGUOUS)
    assert greedy_decode(log_probs, lengths_of(log_probs), ALPHABET) == ["the cot sat on the mat"]


@pytest.mark.parametrize("lexicon", [True, False], ids=["word-lm-lexicon", "char-lm-lexicon-free"])
def test_beam_search_with_a_strong_lm_corrects_the_ambiguous_emission(domain_lm, lexicon):
    log_probs = emissions(AMBIGUOUS)
    decoder = build_decoder(beam_config(lm=str(domain_lm.directory), lexicon=lexicon, alpha=1.0,
                                        beta=0.0), ALPHABET)
    assert decoder(log_probs, lengths_of(log_probs)) == ["the cat sat on the mat"]
    # Without the LM's weight, the acoustics win again.
    unweighted = build_decoder(beam_config(lm=str(domain_lm.directory), lexicon=lexicon, alpha=0.0,
                                           beta=0.0), ALPHABET)
    assert unweighted(log_probs, lengths_of(log_probs)) == ["the cot sat on the mat"]


def test_beam_search_without_an_lm_agrees_with_greedy_on_clear_speech():
    log_probs = emissions(spelled("a dog is on the rug"))
    decoder = build_decoder(beam_config(lm=""), ALPHABET)
    assert decoder(log_probs, lengths_of(log_probs)) == ["a dog is on the rug"]


def test_a_batch_respects_each_utterances_length(domain_lm):
    short, full = emissions(spelled("the dog")), emissions(AMBIGUOUS)
    batch = torch.zeros(2, full.shape[1], full.shape[2])
    batch[0, : short.shape[1]] = short[0]
    batch[1] = full[0]
    lengths = torch.tensor([short.shape[1], full.shape[1]])
    decoder = build_decoder(beam_config(lm=str(domain_lm.directory), alpha=1.0, beta=0.0), ALPHABET)
    assert decoder(batch, lengths) == ["the dog", "the cat sat on the mat"]


def test_weights_come_from_the_config_then_the_tuned_file_then_the_defaults(domain_lm, tmp_path):
    lm_dir = tmp_path / "lm"
    lm_dir.mkdir()
    assert resolve_weights(beam_config(lm=str(lm_dir), untuned_alpha=0.7, untuned_beta=0.1)) == (
        0.7, 0.1, "untuned defaults")
    write_decoder_params(lm_dir, 1.5, -0.25)
    alpha, beta, source = resolve_weights(beam_config(lm=str(lm_dir)))
    assert (alpha, beta) == (1.5, -0.25) and source.endswith("decoder.json")
    assert resolve_weights(beam_config(lm=str(lm_dir), alpha=2.0))[:2] == (2.0, -0.25)
    assert resolve_weights(beam_config(lm=str(lm_dir), alpha=2.0, beta=0.5)) == (2.0, 0.5, "config")
    # Lexicon-free search scores with the character LM: the word decoder's weights do not apply.
    assert resolve_weights(beam_config(lm=str(lm_dir), lexicon=False))[2] == "untuned defaults"


def test_greedy_decoding_never_needs_flashlight_or_kenlm(monkeypatch):
    monkeypatch.setitem(sys.modules, "flashlight", None)
    monkeypatch.setitem(sys.modules, "flashlight.lib.text.decoder", None)
    monkeypatch.setitem(sys.modules, "kenlm", None)
    log_probs = emissions(spelled("the cat"))
    greedy = build_decoder(OmegaConf.structured(DecoderConfig(name="greedy", lm="/nonexistent")),
                           ALPHABET)
    assert greedy(log_probs, lengths_of(log_probs)) == ["the cat"]


def test_beam_search_without_flashlight_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "flashlight.lib.text.decoder", None)
    with pytest.raises(LanguageModelError, match=r"needs flashlight-text: pip install flashlight-text"):
        BeamSearchDecoder(beam_config(lm=""), ALPHABET)


def test_beam_search_with_a_missing_lm_says_how_to_build_it(tmp_path):
    with pytest.raises(LanguageModelError, match=r"lm\.bin does not exist: build the language model"):
        build_decoder(beam_config(lm=str(tmp_path / "no_lm")), ALPHABET)
    with pytest.raises(LanguageModelError, match=r"chars\.bin does not exist"):
        build_decoder(beam_config(lm=str(tmp_path / "no_lm"), lexicon=False), ALPHABET)


def test_an_unknown_decoder_name_is_refused():
    with pytest.raises(ValueError, match=r"decoder='bean' is not a decoder; use one of \['greedy', 'beam'\]"):
        build_decoder(OmegaConf.structured(DecoderConfig(name="bean")), ALPHABET)
