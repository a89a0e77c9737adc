"""`speechprune transcribe <run dir, checkpoint or export> file.wav ...`: print transcripts."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR, positional_overrides
from speechprune.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="transcribe")
def run(cfg: DictConfig) -> None:
    from speechprune.data.audio import AudioError
    from speechprune.decoding.beam import build_decoder
    from speechprune.decoding.recognizer import Recognizer
    from speechprune.deploy.export import ExportError
    from speechprune.deploy.kernels import set_cpu_threads
    from speechprune.lm.files import LanguageModelError
    from speechprune.training.checkpoint import CheckpointError
    from speechprune.training.distributed import choose_device

    if not cfg.files:
        sys.exit("speechprune transcribe: name at least one audio file, e.g. "
                 "`speechprune transcribe runs/quickstart/<run> a.wav b.flac`")
    parallel = set_cpu_threads(cfg.threads) > 1
    try:
        recognizer = Recognizer.from_checkpoint(cfg.model_path, choose_device(cfg.device),
                                                parallel=parallel)
    except (CheckpointError, ExportError) as error:  # missing, corrupt or foreign model file
        sys.exit(f"speechprune transcribe: {error}")
    try:
        decoder = build_decoder(cfg.decoder, recognizer.alphabet)
    except LanguageModelError as error:
        sys.exit(f"speechprune transcribe: {error}")
    try:
        transcripts = recognizer.transcribe(list(cfg.files), decoder=decoder)
    except AudioError as error:  # a missing, unreadable or empty file: its name and what is wrong
        sys.exit(f"speechprune transcribe: {error}")
    for path, text in zip(cfg.files, transcripts):
        print(f"{path}\t{text}")


def main() -> None:
    """The first positional argument is the model, the others are audio files."""
    sys.argv = sys.argv[:1] + positional_overrides(sys.argv[1:], ["model_path"], rest="files")
    run()
