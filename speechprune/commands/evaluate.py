"""`speechprune evaluate <run dir, checkpoint or export> <manifest> [max_wer=N] [key=value ...]`.

Writes per-utterance predictions and a summary, prints the corpus WER/CER, and exits with
status 1 when WER or CER is above the given tolerance (for CI use)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR, load_recognizer, one_line_errors, positional_overrides
from speechprune.config import register_configs

register_configs()
log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="evaluate")
def run(cfg: DictConfig) -> None:
    from speechprune.config_paths import absolute
    from speechprune.deploy.kernels import set_cpu_threads

    recognizer = load_recognizer("evaluate", absolute(cfg.model_path), cfg.device,
                                 parallel=set_cpu_threads(cfg.threads) > 1)
    manifest = Path(absolute(cfg.manifest))
    result, utterances, decoder = _evaluate_manifest(cfg, recognizer, manifest)
    audio_seconds = sum(utterances[u.index].duration for u in result.utterances)
    # Real-time factor: processing seconds per second of audio (below 1 is faster than real time).
    speed = {"decoder": decoder, "audio_seconds": audio_seconds,
             "rtf_model": result.model_seconds / max(audio_seconds, 1e-9),
             "rtf_decoder": result.decode_seconds / max(audio_seconds, 1e-9),
             "rtf": (result.model_seconds + result.decode_seconds) / max(audio_seconds, 1e-9)}
    output_dir = _output_dir(cfg, recognizer.source, manifest)
    summary = {"model": str(recognizer.source), "manifest": str(manifest), **speed,
               **result.summary()}
    _write_results(output_dir, result, utterances, summary)
    _print_results(manifest, result, summary, output_dir)
    failed = [f"{name} {value:.2f}% > {limit}%" for name, value, limit in
              (("WER", result.wer, cfg.max_wer), ("CER", result.cer, cfg.max_cer))
              if limit >= 0 and value > limit]
    if failed:
        print("FAILED: " + "; ".join(failed), file=sys.stderr)
        sys.exit(1)


def _evaluate_manifest(cfg: DictConfig, recognizer, manifest: Path):
    """(EvaluationResult, the manifest's utterances, the decoder's description): the model
    decoded over every utterance of `manifest` with cfg.decoder."""
    from speechprune.config_paths import absolute
    from speechprune.data.dataset import evaluation_dataset, evaluation_loader
    from speechprune.data.manifest import ManifestError, load_utterances
    from speechprune.decoding.beam import build_decoder, describe_decoder
    from speechprune.inference.evaluation import evaluate
    from speechprune.lm.files import LanguageModelError

    if cfg.decoder.lm:
        cfg.decoder.lm = absolute(cfg.decoder.lm)
    with one_line_errors("evaluate", LanguageModelError):
        decoder = build_decoder(cfg.decoder, recognizer.alphabet)
    data_cfg = recognizer.data_cfg
    data_cfg.format = cfg.format
    with one_line_errors("evaluate", ManifestError):  # missing file, or the line that cannot be read
        utterances = load_utterances(manifest, data_cfg)
    dataset = evaluation_dataset(utterances, data_cfg, recognizer.alphabet, recognizer.features,
                                 recognizer.time_stride)
    with one_line_errors("evaluate"):  # a bad utterance under the model's data.bad_input=error
        result = evaluate(recognizer.model, evaluation_loader(dataset, data_cfg),
                          recognizer.alphabet, recognizer.device, decoder=decoder,
                          progress=f"evaluating {manifest.name}")
    return result, utterances, describe_decoder(decoder)


def _output_dir(cfg: DictConfig, model_source: Path, manifest: Path) -> Path:
    """cfg.output_dir, or by default next to the model: <run dir>/evaluation/<manifest stem>
    for a checkpoint in a run directory."""
    from speechprune.config_paths import absolute
    from speechprune.model.run_dir import CHECKPOINTS_DIR, RunDirectory

    if cfg.output_dir:
        return Path(absolute(cfg.output_dir))
    model_home = model_source.parent
    if model_home.name == CHECKPOINTS_DIR:
        model_home = model_home.parent
    return RunDirectory(model_home).evaluation / manifest.stem


def _write_results(output_dir: Path, result, utterances, summary: dict) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    with (output_dir / "predictions.jsonl").open("w") as out:
        for utterance in result.utterances:
            source = utterances[utterance.index]
            entry = {"audio_filepath": source.audio_filepath, **utterance.as_dict()}
            if source.offset is not None:  # a span of its file: say which one
                entry.update(offset=source.offset, duration=source.duration)
            out.write(json.dumps(entry) + "\n")
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def _print_results(manifest: Path, result, summary: dict, output_dir: Path) -> None:
    from speechprune.data.dataset import describe_skips

    print(f"{manifest}: {len(result.utterances)} utterances, WER {result.wer:.2f}%, "
          f"CER {result.cer:.2f}% ({result.skipped} skipped)")
    if result.skipped:  # under the model's data.bad_input=skip; "error" stops at the first
        print(f"speechprune evaluate: skipped {result.skipped} bad utterances "
              f"({describe_skips(result.skipped_by_reason)}), not counted in WER/CER; first "
              f"{result.skip_reasons[0]}", file=sys.stderr)
    print(f"decoder: {summary['decoder']}; real-time factor {summary['rtf']:.4f} "
          f"(model {summary['rtf_model']:.4f}, decoding {summary['rtf_decoder']:.4f})")
    for rank in ("best", "median", "worst"):
        if rank in summary:
            u = summary[rank]
            print(f"  {rank:>6}: WER {u['wer']:6.1f}%  "
                  f"ref: {u['reference']!r}  hyp: {u['hypothesis']!r}")
    print(f"predictions and summary: {output_dir}")


def main() -> None:
    """Positional arguments are the model and the manifest (or use model_path=, manifest=)."""
    sys.argv = sys.argv[:1] + positional_overrides(sys.argv[1:], ["model_path", "manifest"])
    run()
