"""`speechprune transcribe model=<run dir or checkpoint> file.wav ...`: print transcripts."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR
from speechprune.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="transcribe")
def run(cfg: DictConfig) -> None:
    from speechprune.decoding.recognizer import Recognizer
    from speechprune.training.distributed import choose_device

    if not cfg.files:
        sys.exit("speechprune transcribe: name at least one audio file, e.g. "
                 "`speechprune transcribe model=runs/quickstart/<run> a.wav b.flac`")
    recognizer = Recognizer.from_checkpoint(cfg.model, choose_device(cfg.device))
    for path, text in zip(cfg.files, recognizer.transcribe(list(cfg.files))):
        print(f"{path}\t{text}")


def main() -> None:
    """Positional arguments without `=` are audio files: they become the `files` list."""
    overrides = [a for a in sys.argv[1:] if "=" in a or a.startswith("-")]
    files = [a for a in sys.argv[1:] if "=" not in a and not a.startswith("-")]
    if files:
        quoted = ",".join("'" + f.replace("\\", "\\\\").replace("'", "\\'") + "'" for f in files)
        overrides.append(f"files=[{quoted}]")
    sys.argv = sys.argv[:1] + overrides
    run()
