"""speechprune.decoding.tuning and `speechprune lm tune`: alpha/beta found on a dev set, written
where beam decoding (and `speechprune evaluate`) picks them up."""

from __future__ import annotations

import json

import pytest
import torch
from lm.lm_test_support import ALPHABET, AMBIGUOUS, beam_config, emissions, spelled
from omegaconf import OmegaConf
from training_helpers import run_cli

from speechprune.config import LmTuneConfig
from speechprune.decoding.beam import build_decoder
from speechprune.lm.files import read_decoder_params
from speechprune.decoding.tuning import DevEmissions, save_tuning, tune_weights


def dev_set() -> DevEmissions:
    """Two clear utterances and the ambiguous one that only the LM gets right."""
    utterances = [(spelled("the dog sat on the rug"), "the dog sat on the rug"),
                  (spelled("a cat and a dog"), "a cat and a dog"),
                  (AMBIGUOUS, "the cat sat on the mat")]
    return DevEmissions([emissions(frames)[0] for frames, _ in utterances],
                        [reference for _, reference in utterances])


def test_tuning_finds_weights_that_beat_greedy_and_beam_decoding_then_uses_them(domain_lm):
    decoder_cfg = beam_config(lm=str(domain_lm.directory), untuned_alpha=0.0, untuned_beta=0.0)
    cfg = OmegaConf.structured(LmTuneConfig(model_path="unused", manifest="unused", trials=8,
                                            alpha_min=0.0, alpha_max=2.0, beta_min=-1.0,
                                            beta_max=1.0, seed=3))
    result = tune_weights(dev_set(), ALPHABET, decoder_cfg, cfg)
    assert result.greedy_wer > 0 and result.untuned_wer == result.greedy_wer
    assert result.wer == 0.0 and result.trials == 8
    assert 0.0 <= result.alpha <= 2.0 and -1.0 <= result.beta <= 1.0

    save_tuning(str(domain_lm.directory), result, manifest="dev.jsonl")
    assert read_decoder_params(domain_lm.directory)["alpha"] == result.alpha
    decoder = build_decoder(beam_config(lm=str(domain_lm.directory)), ALPHABET)
    assert (decoder.alpha, decoder.beta) == (result.alpha, result.beta)
    log_probs = emissions(AMBIGUOUS)
    assert decoder(log_probs, torch.tensor([log_probs.shape[1]])) == ["the cat sat on the mat"]
    (domain_lm.directory / "decoder.json").unlink()  # the session-wide LM stays untuned


@pytest.mark.slow
def test_lm_commands_build_tune_and_evaluate_a_trained_run(trained_run, micro_corpus, tmp_path):
    lm_dir = tmp_path / "lm"
    built = run_cli("lm", "build", f"manifests=[{micro_corpus / 'train.jsonl'}]",
                    f"output_dir={lm_dir}", "char_order=0")
    assert built.returncode == 0, built.stderr[-2000:]
    assert (lm_dir / "lm.bin").is_file()

    tuned = run_cli("lm", "tune", str(trained_run), str(micro_corpus / "dev.jsonl"),
                    f"decoder.lm={lm_dir}", "trials=3", "decoder.beam_size=8")
    assert tuned.returncode == 0, tuned.stderr[-2000:]
    params = read_decoder_params(lm_dir)
    assert params["trials"] == 3 and "greedy_dev_wer" in params

    evaluated = run_cli("evaluate", str(trained_run), str(micro_corpus / "test.jsonl"),
                        "decoder=beam", f"decoder.lm={lm_dir}", "decoder.beam_size=8",
                        f"output_dir={tmp_path / 'eval'}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert f"alpha {params['alpha']:g}, beta {params['beta']:g} from {lm_dir}/decoder.json" \
        in summary["decoder"]
    assert summary["rtf"] > 0 and summary["audio_seconds"] > 0
