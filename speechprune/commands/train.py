"""`speechprune train`: train (or resume) a DeepSpeech2 model in its own run directory."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR, one_line_errors
from speechprune.config import register_configs
from speechprune.pruning import register_method_configs

register_configs()
register_method_configs()  # pruning=<method> names its schema, pruning/<method>_schema


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    from speechprune.model.checkpoint import CheckpointWriteError
    from speechprune.model.run_dir import RunDirectory
    from speechprune.report.objective import sweep_objective
    from speechprune.training.loop import StartupError, train

    run = RunDirectory(Path(HydraConfig.get().runtime.output_dir))
    # A setting or input that cannot work (schedule, manifest, baseline, checkpoint to resume,
    # language model, run directory in use) stops the run before it trains, in one line that
    # names it; so does a checkpoint that cannot be written (disk full), naming the file.
    with one_line_errors("train", StartupError, CheckpointWriteError):
        metrics = train(cfg, run)
    # The value a Hydra sweeper (e.g. Optuna) minimizes: conf `objective`.
    return sweep_objective(metrics, cfg.objective)
