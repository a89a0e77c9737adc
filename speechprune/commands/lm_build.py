"""`speechprune lm build [manifests=[...]] [text_files=[...]] [output_dir=lm/tiny]`: a word
n-gram LM (ARPA + KenLM binary), its lexicon and a character LM for beam-search decoding."""

from __future__ import annotations

import hydra
from hydra.utils import to_absolute_path

from speechprune.commands import CONF_DIR, one_line_errors
from speechprune.config import LmBuildConfig, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="lm_build")
def main(cfg: LmBuildConfig) -> None:
    from speechprune.data.manifest import ManifestError
    from speechprune.data.text import TranscriptError
    from speechprune.lm.build import build_language_model
    from speechprune.lm.files import LanguageModelError

    # Paths are relative to where the command started (kept free of torch: this command never
    # needs it).
    cfg.manifests = [to_absolute_path(m) for m in cfg.manifests]
    cfg.text_files = [to_absolute_path(t) for t in cfg.text_files]
    cfg.exclude_manifests = [to_absolute_path(m) for m in cfg.exclude_manifests]
    cfg.output_dir = to_absolute_path(cfg.output_dir)
    with one_line_errors("lm build", LanguageModelError, ManifestError, TranscriptError):
        files = build_language_model(cfg)
    print(f"language model: {files.binary} (lexicon {files.lexicon}); decode with "
          f"`speechprune evaluate decoder=beam decoder.lm={files.directory} ...`")
