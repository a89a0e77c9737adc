"""`speechprune lm tune`: choose the LM weight (alpha) and word bonus (beta) of beam search by
WER on a dev set with Optuna, from acoustic-model outputs computed once."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Iterable

import torch
from omegaconf import OmegaConf

from speechprune.config import DecoderConfig, LmTuneConfig
from speechprune.data.text import Alphabet
from speechprune.decoding.beam import BeamSearchDecoder, Decoder, GreedyDecoder
from speechprune.decoding.metrics import ErrorCounts
from speechprune.lm.files import LanguageModelError, write_decoder_params

log = logging.getLogger(__name__)


@dataclass
class DevEmissions:
    """Acoustic-model outputs of a dev set: one (time, classes) log-softmax tensor per
    utterance (valid frames only) and its normalized reference transcript."""

    log_probs: list[torch.Tensor]
    references: list[str]


@dataclass
class TuningResult:
    alpha: float
    beta: float
    wer: float  # dev WER (percent) with the chosen weights
    untuned_wer: float  # with the config's untuned weights
    greedy_wer: float
    trials: int


@torch.no_grad()
def collect_emissions(model: torch.nn.Module, batches: Iterable,
                      device: torch.device) -> DevEmissions:
    """Run the model over every batch (speechprune.data.dataset.Batch) once."""
    model.eval()
    log_probs, references = [], []
    for batch in batches:
        if batch.features.shape[0] == 0:
            continue
        batch = batch.to(device)
        outputs, lengths = model(batch.features, batch.feature_lengths)
        outputs, lengths = outputs.float().cpu(), lengths.cpu()
        for row, length, text in zip(outputs, lengths, batch.texts):
            log_probs.append(row[: int(length)].contiguous())
            references.append(text)
    return DevEmissions(log_probs, references)


def decode_errors(decoder: Decoder, emissions: DevEmissions) -> ErrorCounts:
    """Summed edit counts of decoding every utterance of `emissions` with `decoder`."""
    counts = ErrorCounts()
    for log_probs, reference in zip(emissions.log_probs, emissions.references):
        hypothesis = decoder(log_probs[None], torch.tensor([log_probs.shape[0]]))[0]
        counts.add(reference, hypothesis)
    return counts


def tune_weights(emissions: DevEmissions, alphabet: Alphabet, decoder_cfg: DecoderConfig,
                 cfg: LmTuneConfig) -> TuningResult:
    """The (alpha, beta) of lowest dev WER among cfg.trials Optuna TPE trials in the ranges of
    cfg; the first trial is the untuned pair, so the result is never worse than it on dev."""
    try:
        import optuna
    except ImportError as error:
        raise LanguageModelError("lm tune needs Optuna: pip install optuna") from error
    if not emissions.log_probs:
        raise LanguageModelError("lm tune: the dev manifest gave no utterance to tune on")

    def dev_wer(alpha: float, beta: float) -> float:
        trial_cfg = OmegaConf.merge(OmegaConf.structured(DecoderConfig), decoder_cfg,
                                    {"alpha": alpha, "beta": beta})
        return decode_errors(BeamSearchDecoder(trial_cfg, alphabet), emissions).wer

    started = time.perf_counter()

    def objective(trial: "optuna.Trial") -> float:
        alpha = trial.suggest_float("alpha", cfg.alpha_min, cfg.alpha_max)
        beta = trial.suggest_float("beta", cfg.beta_min, cfg.beta_max)
        wer = dev_wer(alpha, beta)
        done = trial.number + 1
        per_trial = (time.perf_counter() - started) / done
        log.info("trial %d/%d: alpha %.3f beta %.3f -> dev WER %.2f%% (%.1f s per trial, "
                 "ETA %.0f s)", done, cfg.trials, alpha, beta, wer, per_trial,
                 per_trial * (cfg.trials - done))
        return wer

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=cfg.seed))
    untuned = {"alpha": min(max(decoder_cfg.untuned_alpha, cfg.alpha_min), cfg.alpha_max),
               "beta": min(max(decoder_cfg.untuned_beta, cfg.beta_min), cfg.beta_max)}
    with warnings.catch_warnings():
        # enqueue_trial is "experimental" in the Optuna 2.x that hydra-optuna-sweeper pins.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.enqueue_trial(untuned)
    study.optimize(objective, n_trials=cfg.trials)
    greedy = decode_errors(GreedyDecoder(alphabet), emissions).wer
    best = study.best_trial
    return TuningResult(alpha=float(best.params["alpha"]), beta=float(best.params["beta"]),
                        wer=float(best.value), untuned_wer=float(study.trials[0].value),
                        greedy_wer=greedy, trials=len(study.trials))


def save_tuning(lm_dir: str, result: TuningResult, lexicon: bool = True, **provenance) -> str:
    """Write the tuned weights to <lm_dir>/decoder.json (decoder_lexicon_free.json for the
    lexicon-free decoder), where beam decoding reads them."""
    path = write_decoder_params(lm_dir, result.alpha, result.beta, lexicon, dev_wer=result.wer,
                                untuned_dev_wer=result.untuned_wer,
                                greedy_dev_wer=result.greedy_wer,
                                trials=result.trials, **provenance)
    return str(path)
