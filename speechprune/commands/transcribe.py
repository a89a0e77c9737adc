"""`speechprune transcribe <run dir, checkpoint or export> file.wav ...`: print transcripts."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR, load_recognizer, one_line_errors, positional_overrides
from speechprune.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="transcribe")
def run(cfg: DictConfig) -> None:
    from speechprune.data.audio import AudioError
    from speechprune.decoding.beam import build_decoder
    from speechprune.deploy.kernels import set_cpu_threads
    from speechprune.lm.files import LanguageModelError

    if not cfg.files:
        sys.exit("speechprune transcribe: name at least one audio file, e.g. "
                 "`speechprune transcribe runs/quickstart/<run> a.wav b.flac`")
    recognizer = load_recognizer("transcribe", cfg.model_path, cfg.device,
                                 parallel=set_cpu_threads(cfg.threads) > 1)
    with one_line_errors("transcribe", LanguageModelError):
        decoder = build_decoder(cfg.decoder, recognizer.alphabet)
    # Each transcript is printed as soon as it is ready, and a file that cannot be read is
    # named on stderr without losing the others; the exit status says whether any failed.
    unreadable = 0
    for path in cfg.files:
        try:
            text = recognizer.transcribe([path], decoder=decoder)[0]
        except AudioError as error:
            print(f"speechprune transcribe: {error}", file=sys.stderr, flush=True)
            unreadable += 1
            continue
        print(f"{path}\t{text}", flush=True)
    if unreadable:
        sys.exit(f"speechprune transcribe: {unreadable} of {len(cfg.files)} files could not be "
                 "read (named above); the others are transcribed")


def main() -> None:
    """The first positional argument is the model, the others are audio files."""
    sys.argv = sys.argv[:1] + positional_overrides(sys.argv[1:], ["model_path"], rest="files")
    run()
