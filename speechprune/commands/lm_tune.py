"""`speechprune lm tune <run dir> <dev manifest> decoder.lm=<lm dir>`: search the
beam decoder's alpha/beta on the dev set and write them to <lm dir>/decoder.json (with
decoder.lexicon=false: decoder_lexicon_free.json), where `speechprune evaluate decoder=beam
decoder.lm=<lm dir>` picks them up."""

from __future__ import annotations

import sys

import hydra

from speechprune.commands import CONF_DIR, load_recognizer, one_line_errors, positional_overrides
from speechprune.config import LmTuneConfig, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="lm_tune")
def run(cfg: LmTuneConfig) -> None:
    from speechprune.config_paths import absolute
    from speechprune.data.dataset import evaluation_dataset, evaluation_loader
    from speechprune.data.manifest import load_utterances
    from speechprune.decoding.tuning import collect_emissions, save_tuning, tune_weights
    from speechprune.lm.files import LanguageModelError

    if not cfg.decoder.lm:
        sys.exit("speechprune lm tune: name the language model with decoder.lm=<dir> "
                 "(built by `speechprune lm build`)")
    cfg.decoder.name = "beam"
    cfg.decoder.lm = absolute(cfg.decoder.lm)
    recognizer = load_recognizer("lm tune", absolute(cfg.model_path), cfg.device)
    data_cfg = recognizer.data_cfg
    data_cfg.format = cfg.format
    utterances = load_utterances(absolute(cfg.manifest), data_cfg)
    if 0 < cfg.max_utterances < len(utterances):
        step = len(utterances) / cfg.max_utterances
        utterances = [utterances[int(i * step)] for i in range(cfg.max_utterances)]
    dataset = evaluation_dataset(utterances, data_cfg, recognizer.alphabet, recognizer.features,
                                 recognizer.time_stride)
    emissions = collect_emissions(recognizer.model, evaluation_loader(dataset, data_cfg),
                                  recognizer.device)
    with one_line_errors("lm tune", LanguageModelError):
        result = tune_weights(emissions, recognizer.alphabet, cfg.decoder, cfg)
    path = save_tuning(cfg.decoder.lm, result, cfg.decoder.lexicon, model=str(recognizer.source),
                       manifest=absolute(cfg.manifest), utterances=len(emissions.references))
    print(f"dev WER: greedy {result.greedy_wer:.2f}%, beam untuned {result.untuned_wer:.2f}%, "
          f"beam tuned {result.wer:.2f}% (alpha {result.alpha:.3f}, beta {result.beta:.3f}, "
          f"{result.trials} trials) -> {path}")


def main() -> None:
    """Positional arguments are the model and the dev manifest (or model_path=, manifest=)."""
    sys.argv = sys.argv[:1] + positional_overrides(sys.argv[1:], ["model_path", "manifest"])
    run()
