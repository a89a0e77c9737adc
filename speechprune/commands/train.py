"""`speechprune train`: train (or resume) a DeepSpeech2 model in its own run directory."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR
from speechprune.config import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    from speechprune.report.objective import sweep_objective
    from speechprune.training.loop import train
    from speechprune.training.run_dir import RunDirectory

    run = RunDirectory(Path(HydraConfig.get().runtime.output_dir))
    metrics = train(cfg, run)
    # The value a Hydra sweeper (e.g. Optuna) minimizes: conf `objective`.
    return sweep_objective(metrics, cfg.objective)
