"""`speechprune data build corpus=tiny|sentences`: synthesize an embedded corpus under data/."""

from __future__ import annotations

import hydra

from speechprune.commands import CONF_DIR
from speechprune.config import DataBuildConfig, register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="data_build")
def main(cfg: DataBuildConfig) -> None:
    from speechprune.corpus.build import build_corpus

    build_corpus(cfg.corpus)
