"""The sweep presets: the composed Optuna search and SLURM launcher, the Table 3 experiment
presets, and a real two-trial Optuna sweep whose objective honours the parameter budget."""

from __future__ import annotations

import json

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from training_helpers import REPO, compose_train, run_cli

from speechprune.config import register_configs
from speechprune.data.features import FeatureExtractor
from speechprune.data.text import Alphabet
from speechprune.model.deepspeech2 import DeepSpeech2
from speechprune.pruning import register_method_configs
from speechprune.report.objective import sweep_objective

TABLE3 = ["birnn_dense_baseline", "birnn_dense_small", "birnn_sparse", "birnn_sparse_medium",
          "birnn_sparse_big", "bigru_dense_baseline", "bigru_dense_small", "bigru_sparse",
          "bigru_sparse_medium"]


def compose_with_hydra(overrides: list[str]):
    register_configs()
    register_method_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_optuna_preset_composes_a_minimizing_search_over_pruning_schedule_under_a_budget():
    cfg = compose_with_hydra(["hparams_search=sparse_budget"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "minimize"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.n_trials > 1
    assert "interval(" in sweeper.params["pruning.groups.recurrent.percentile"]
    assert "choice(" in sweeper.params["pruning.groups.recurrent.ramp_itr"]
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert cfg.pruning.method == "narang"
    assert cfg.objective.metric == "dev_wer" and cfg.objective.max_params_nonzero > 0
    # Every searched key exists in the composed config (a typo would fail every trial).
    for key in sweeper.params:
        assert OmegaConf.select(cfg, key) is not None, key


def test_slurm_launcher_preset_composes_submitit_with_its_logs_in_the_sweep():
    cfg = compose_with_hydra(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"])
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert launcher.partition == "gpu"
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1
    assert launcher.timeout_min > 0
    assert launcher.submitit_folder == f"{cfg.hydra.sweep.dir}/.submitit/%j"


def build_model(cfg) -> DeepSpeech2:
    return DeepSpeech2(cfg.model, FeatureExtractor(cfg.data.features).num_features,
                       len(Alphabet.from_config(cfg.data.text)))


@pytest.mark.parametrize("family", ["birnn", "bigru"])
def test_table3_presets_have_the_papers_shape(family):
    configs = {name: compose_train([f"experiment=table3/{name}"])
               for name in TABLE3 if name.startswith(family)}
    baseline = configs[f"{family}_dense_baseline"]
    sparse = configs[f"{family}_sparse"]
    small = configs[f"{family}_dense_small"]
    assert {c.model.name for c in configs.values()} == {family}
    assert baseline.pruning.method == small.pruning.method == "none"
    assert sparse.pruning.method == "narang"
    assert sparse.model.hidden_size == baseline.model.hidden_size
    larger = [c for n, c in configs.items() if "sparse_" in n]
    assert larger and all(c.model.hidden_size > baseline.model.hidden_size for c in larger)
    assert all(c.pruning.method == "narang" for c in larger)
    # Dense small: about the non-zero parameters the baseline-sized model keeps at 90% sparsity.
    sparse_model = build_model(sparse)
    pruned = sum(p.numel() for n, p in sparse_model.named_parameters()
                 if p.dim() >= 2 and ("weight_hh" in n or "weight_ih" in n or n.startswith("fc")))
    kept_at_90 = sum(p.numel() for p in sparse_model.parameters()) - 0.9 * pruned
    small_params = sum(p.numel() for p in build_model(small).parameters())
    assert small_params == pytest.approx(kept_at_90, rel=0.15)
    # One sweep over the presets puts each run in its own folder.
    subdir = OmegaConf.to_container(compose_with_hydra([f"experiment=table3/{family}_sparse"])
                                    .hydra.sweep, resolve=False)["subdir"]
    assert subdir.startswith("${model.name}_${pruning.method}_h${model.hidden_size}/")
    names = {(c.model.name, c.pruning.method, c.model.hidden_size) for c in configs.values()}
    assert len(names) == len(configs)


@pytest.mark.slow
def test_optuna_sweep_runs_trials_and_minimizes_the_budgeted_objective(test_experiment, tmp_path):
    budget = 5000  # well below the tiny model's ~28k parameters: most trials pay the penalty
    result = run_cli("train", "--config-dir", str(test_experiment), "experiment=report_test",
                     "hparams_search=sparse_budget", "hydra.sweeper.n_trials=2",
                     "hydra.sweeper.sampler.n_startup_trials=2", "trainer.epochs=2",
                     f"objective.max_params_nonzero={budget}", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    values = []
    for trial in ("trial_0", "trial_1"):
        metrics = json.loads((tmp_path / trial / "metrics.json").read_text())
        cfg = OmegaConf.load(tmp_path / trial / "config.yaml")
        excess = max(0.0, metrics["params_nonzero"] / budget - 1)
        expected = metrics["dev_wer"] + cfg.objective.over_budget_penalty * excess
        assert sweep_objective(metrics, cfg.objective) == pytest.approx(expected)
        values.append(expected)
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(min(values), rel=1e-6)
    assert set(best["best_params"]) == set(compose_with_hydra(
        ["hparams_search=sparse_budget"]).hydra.sweeper.params)
