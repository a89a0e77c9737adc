"""`speechprune predict <train overrides>`: predicted sparsity and non-zero parameters per
group of a pruning schedule, from the schedule and the baseline's weights, without training."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from speechprune.commands import CONF_DIR, one_line_errors
from speechprune.config import register_configs
from speechprune.pruning import register_method_configs

register_configs()
register_method_configs()  # pruning=<method> names its schema, pruning/<method>_schema


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    from speechprune.model.run_setup import (STARTUP_INPUT_ERRORS, SingleProcess, build_data,
                                             model_for_data, seed_everything,
                                             total_training_steps)
    from speechprune.pruning.predict import predict_pruning

    seed_everything(cfg.trainer.seed)  # the same initial weights as `train` would start from
    # What `train` would stop on at start-up (schedule, manifest, baseline) stops here in one line.
    with one_line_errors("predict", *STARTUP_INPUT_ERRORS):
        model = model_for_data(cfg.model, cfg.data)
        data = build_data(cfg.data, cfg.trainer.seed, model.time_stride, SingleProcess())
        steps_per_epoch = len(data.train_sampler)
        total_steps = total_training_steps(steps_per_epoch, cfg.trainer)
        prediction = predict_pruning(model, cfg.pruning, total_steps, steps_per_epoch)
    print(f"pruning={cfg.pruning.method}: {total_steps} steps ({steps_per_epoch} per epoch)")
    print(prediction.table())
