"""The training loop: one readable function from config to a trained, evaluated model.

Reading order: set-up (devices, data, model, optimizer, pruner), resume, then the epoch loop
(forward, CTC loss, backward, clip, step, prune, log), dev evaluation after each epoch, and the
final test evaluation of the best checkpoint.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from speechprune.config import TrainConfig
from speechprune.data.dataset import describe_skips
from speechprune.decoding.beam import build_decoder
from speechprune.inference.evaluation import EvaluationResult, evaluate
from speechprune.model.checkpoint import load_checkpoint, model_checkpoint, save_checkpoint
from speechprune.model.loss import ctc_loss
from speechprune.model.run_dir import METRICS_FILE, RunDirectory
from speechprune.model.run_setup import (STARTUP_INPUT_ERRORS, DataSetup, build_data,
                                         model_for_data, seed_everything, total_training_steps)
from speechprune.pruning import build_pruner
from speechprune.pruning.predict import Prediction, predict_pruning
from speechprune.training import dashboard
from speechprune.training.dashboard_layout import relative_dev_figures, write_layout
from speechprune.training.distributed import DistributedContext, setup_distributed
from speechprune.training.optim import build_optimizer, build_scheduler
from speechprune.training.precision import autocast_dtype, resolve_precision

log = logging.getLogger(__name__)


@dataclass
class TrainingState:
    """Where training stands; saved in every checkpoint so a resumed run continues exactly."""

    epoch: int = 0  # current epoch (0-based)
    batch_in_epoch: int = 0  # batches of `epoch` already trained on
    step: int = 0  # optimizer steps taken over the whole run (skipped ones included)
    best_dev_wer: float = math.inf
    best_step: int = -1
    nonfinite_steps: int = 0  # steps skipped for a non-finite loss or gradient
    skipped_utterances: int = 0  # bad utterances dropped by the data pipeline
    skipped_by_reason: dict[str, int] = field(default_factory=dict)  # by skip_kind
    train_seconds: float = 0.0
    audio_seconds: float = 0.0  # audio trained on, for throughput
    data_wait_seconds: float = 0.0


def rng_state() -> dict[str, Any]:
    name, keys, position, has_gauss, cached = np.random.get_state()
    # Plain lists, not arrays: checkpoints are loaded with weights_only, which refuses numpy.
    state = {"python": random.getstate(),
             "numpy": [name, keys.tolist(), position, has_gauss, cached],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def pruning_metrics(pruner, prediction: Optional[Prediction]) -> dict[str, Any]:
    """What pruning did, next to what was predicted before training."""
    achieved = pruner.scalars()
    metrics: dict[str, Any] = {"pruning_method": pruner.name, "pruning": achieved}
    if prediction is not None:
        metrics["predicted"] = prediction.as_dict()
        metrics["prediction_error"] = {
            group: achieved[f"sparsity/{group}"] - predicted
            for group, predicted in prediction.group_sparsity.items()}
        metrics["prediction_error"]["params_nonzero"] = (
            achieved["params/nonzero"] - prediction.nonzero_params)
    return metrics


def relative_to_baseline(metrics: dict[str, Any], baseline_dir: str) -> dict[str, Any]:
    """Figures relative to the dense baseline run, in the paper's form (baseline - this) /
    baseline (negative: worse than the baseline), and the parameter reduction factor."""
    path = RunDirectory(Path(baseline_dir)).metrics_file
    if not path.is_file():
        log.warning("pruning.baseline=%s has no %s: relative figures left out", baseline_dir,
                    METRICS_FILE)
        return {}
    baseline = json.loads(path.read_text())
    return {
        "baseline": {"run": str(baseline_dir), **{k: baseline[k] for k in
                     ("test_wer", "test_cer", "dev_wer", "params_nonzero", "params_total")}},
        "relative_test_wer": (baseline["test_wer"] - metrics["test_wer"]) / baseline["test_wer"],
        "relative_test_cer": (baseline["test_cer"] - metrics["test_cer"]) / baseline["test_cer"],
        "param_reduction": baseline["params_nonzero"] / max(1, metrics["params_nonzero"]),
    }


class Trainer:
    """Holds the objects of one training run; `run()` is the loop."""

    def __init__(self, cfg: TrainConfig | DictConfig, run: RunDirectory):
        self.cfg = cfg
        self.run_dir = run
        trainer = cfg.trainer
        if trainer.threads > 0:
            torch.set_num_threads(trainer.threads)
        self.dist: DistributedContext = setup_distributed(trainer.device)
        # One training per run directory: rank 0, which writes it, holds its lock to the end.
        self.run_lock = run.lock() if self.dist.is_main else None
        self.device = self.dist.device
        self.precision = resolve_precision(trainer.precision, self.device)
        self.amp_dtype = autocast_dtype(self.precision, self.device)
        # Same seed on every rank: identical initial weights without a broadcast.
        seed_everything(trainer.seed)

        self.model = model_for_data(cfg.model, cfg.data).to(self.device)
        self.data: DataSetup = build_data(cfg.data, trainer.seed, self.model.time_stride, self.dist)
        self.steps_per_epoch = len(self.data.train_sampler)
        self.total_steps = total_training_steps(self.steps_per_epoch, trainer)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim, self.steps_per_epoch,
                                         self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.pruner = build_pruner(self.model, cfg.pruning, self.total_steps, self.steps_per_epoch)
        # Predicted before training (from the initial or baseline weights), compared at the end.
        self.prediction = (predict_pruning(self.model, cfg.pruning, self.total_steps,
                                           self.steps_per_epoch)
                           if self.pruner is not None and self.dist.is_main else None)
        # Built now so that a missing language model stops the run before training, not after.
        self.test_decoder = build_decoder(cfg.trainer.decoder, self.data.alphabet)
        self.ddp_model: torch.nn.Module = self.model
        if self.dist.enabled:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.state = TrainingState()
        self.writer = None
        self.baseline_metrics: dict[str, Any] | None = None  # the pruning.baseline run's metrics.json

    # ---- set-up helpers ---------------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            **model_checkpoint(OmegaConf.to_container(self.cfg, resolve=True),
                               self.data.alphabet.symbols, self.model.state_dict(),
                               self.data.feature_stats),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "pruner": self.pruner.state_dict() if self.pruner else None,
            "state": asdict(self.state),
            "rng": rng_state(),
        }

    def save(self, *names: str) -> None:
        if not self.dist.is_main:
            return
        state = self.checkpoint_state()
        for name in names:
            save_checkpoint(state, self.run_dir.checkpoint(name))

    def resume_if_possible(self) -> bool:
        path = self.run_dir.last_checkpoint
        if not (self.cfg.trainer.resume and path.is_file()):
            return False
        checkpoint = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        if self.pruner is not None:
            if checkpoint["pruner"] is None:
                raise ValueError(f"{path}: this run was started without pruning; "
                                 "resume it with the same pruning config or use a new run directory")
            self.pruner.load_state_dict(checkpoint["pruner"])
        self.state = TrainingState(**checkpoint["state"])
        restore_rng_state(checkpoint["rng"])
        log.info("resumed from %s at epoch %d, batch %d, step %d", path, self.state.epoch,
                 self.state.batch_in_epoch, self.state.step)
        return True

    # ---- the loop -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        cfg, state = self.cfg, self.state
        resumed = self.resume_if_possible()
        state = self.state
        if self.dist.is_main:
            self.writer = dashboard.open_writer(self.run_dir.tensorboard, state.step)
            self.baseline_metrics = write_layout(self.writer, cfg, self.total_steps)
            description = self.model.describe()
            log.info("model %s:\n%s", cfg.model.name, description)
            log.info("precision %s (trainer.precision=%s) on %s", self.precision,
                     cfg.trainer.precision, self.device)
            self.writer.add_text("model/parameters", f"```\n{description}\n```", state.step)
            log.info("%s: %d train utterances in %d batches per epoch (padding %.1f%%), "
                     "%d dev, %d test", "resuming" if resumed else "starting",
                     len(self.data.train_set), self.steps_per_epoch,
                     100 * self.data.train_padding_fraction, len(self.data.dev_set),
                     len(self.data.test_set))

        while state.epoch < cfg.trainer.epochs and not self.reached_max_steps():
            self.train_epoch()
            if state.batch_in_epoch >= self.steps_per_epoch:  # finished, not stopped at max_steps
                state.epoch += 1
                state.batch_in_epoch = 0
            last = state.epoch >= cfg.trainer.epochs or self.reached_max_steps()
            if state.epoch % cfg.trainer.eval_every_epochs == 0 or self.reached_max_steps():
                self.evaluate_dev(last=last)
            self.save("last")

        # No best checkpoint yet (zero epochs trained, or the last epoch was not evaluated):
        # evaluate the model as it is now. Rank 0 alone knows.
        if self.dist.broadcast_flag(state.best_step < 0):
            self.evaluate_dev(last=True)
        return self.finish()

    def reached_max_steps(self) -> bool:
        return 0 < self.cfg.trainer.max_steps <= self.state.step

    def train_epoch(self) -> None:
        cfg, state = self.cfg, self.state
        sampler, dataset = self.data.train_sampler, self.data.train_set
        sampler.set_epoch(state.epoch)
        sampler.set_start_batch(state.batch_in_epoch)
        dataset.set_epoch(state.epoch)
        loader = self.data.train_loader()
        self.ddp_model.train()
        progress = tqdm(total=self.steps_per_epoch, initial=state.batch_in_epoch,
                        desc=f"epoch {state.epoch + 1}/{cfg.trainer.epochs}", unit="batch",
                        disable=not self.dist.is_main, dynamic_ncols=True, mininterval=2.0)
        epoch_skips: Counter[str] = Counter()
        first_skip = ""
        wait_start = time.perf_counter()
        for batch in loader:
            data_wait = time.perf_counter() - wait_start
            step_start = time.perf_counter()
            loss, grad_norm = self.train_step(batch)
            state.batch_in_epoch += 1
            state.step += 1
            state.skipped_utterances += batch.skipped
            for kind in batch.skip_kinds:
                state.skipped_by_reason[kind] = state.skipped_by_reason.get(kind, 0) + 1
            epoch_skips.update(batch.skip_kinds)
            first_skip = first_skip or next(iter(batch.skip_reasons), "")
            audio = sum(self.data.train_durations[i] for i in batch.indices)
            step_seconds = time.perf_counter() - step_start
            state.train_seconds += step_seconds + data_wait
            state.audio_seconds += audio
            state.data_wait_seconds += data_wait
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if self.dist.is_main and state.step % cfg.trainer.log_every_steps == 0:
                self.log_train_step(loss, grad_norm, audio / (step_seconds + data_wait),
                                    data_wait / (step_seconds + data_wait))
            if cfg.trainer.checkpoint_every_steps and state.step % cfg.trainer.checkpoint_every_steps == 0:
                self.save("last")
            if self.reached_max_steps():
                break
            wait_start = time.perf_counter()
        progress.close()
        if epoch_skips:
            log.warning("epoch %d: skipped %d bad utterances (%s); first %s", state.epoch + 1,
                        epoch_skips.total(), describe_skips(epoch_skips), first_skip)

    def train_step(self, batch) -> tuple[float, float]:
        """One optimizer step; returns (loss, gradient norm). A non-finite loss or gradient
        skips the update (counted), so one bad batch cannot destroy the weights."""
        state = self.state
        empty = torch.tensor([float(batch.features.shape[0] == 0)])
        if self.dist.all_reduce_sum(empty).item() > 0:  # every rank must skip together
            self.finish_step()
            return math.nan, math.nan
        batch = batch.to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            log_probs, output_lengths = self.ddp_model(batch.features, batch.feature_lengths)
        loss = ctc_loss(log_probs, output_lengths, batch.targets, batch.target_lengths)
        if self.pruner is not None:
            loss = loss + self.pruner.regularization()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.trainer.grad_clip)
        if torch.isfinite(loss) and torch.isfinite(grad_norm):
            self.scaler.step(self.optimizer)
        else:
            state.nonfinite_steps += 1
            log.warning("step %d: non-finite %s, update skipped (%d so far)", state.step,
                        "loss" if not torch.isfinite(loss) else "gradient", state.nonfinite_steps)
        self.scaler.update()
        self.finish_step()
        return loss.item(), grad_norm.item()

    def finish_step(self) -> None:
        """What follows every step, taken or skipped: the schedule and the pruning masks."""
        self.scheduler.step()
        if self.pruner is not None:
            self.pruner.step(self.state.step)

    # ---- logging and evaluation ------------------------------------------------------------------

    def log_train_step(self, loss: float, grad_norm: float, throughput: float,
                       data_wait_fraction: float) -> None:
        step = self.state.step
        scalars = {"train/loss": loss, "train/grad_norm": grad_norm,
                   "train/learning_rate": self.optimizer.param_groups[0]["lr"],
                   "train/throughput_audio_s_per_s": throughput,
                   "train/data_wait_fraction": data_wait_fraction,
                   "train/skipped_utterances": self.state.skipped_utterances,
                   "train/nonfinite_steps": self.state.nonfinite_steps}
        if self.pruner is not None:
            scalars.update({f"pruning/{k}": v for k, v in self.pruner.scalars().items()})
        dashboard.log_scalars(self.writer, scalars, step)

    def evaluate_dev(self, last: bool = False) -> Optional[EvaluationResult]:
        """Dev loss/WER/CER, logged; the model becomes `best` if its WER is the lowest so far.

        While pruning is under way the model is not a candidate for best: its masks will still
        change, and an early, half-pruned model with a lower dev WER would otherwise be the one
        tested and exported (seen: a 48-epoch run picked a 66%-sparse model from epoch 16 while
        pruning went on to 88%). The run's `last` evaluation becomes best when none has (the
        run ended before its pruning schedule did): the final model is the best there is.
        """
        state = self.state
        if not self.dist.is_main:
            self.dist.barrier()
            return None
        result = evaluate(self.model, self.data.dev_loader(), self.data.alphabet, self.device,
                          self.amp_dtype, progress="dev")
        candidate = (self.pruner is None or self.pruner.masks_final
                     or (last and state.best_step < 0))
        log.info("step %d dev: loss %.3f  WER %.2f%%  CER %.2f%%%s", state.step, result.loss,
                 result.wer, result.cer, "" if candidate else "  (pruning under way: not a "
                 "candidate for the best checkpoint)")
        counts = self.model_counts()
        dashboard.log_scalars(self.writer, {"dev/loss": result.loss, "dev/wer": result.wer,
                                            "dev/cer": result.cer, **counts,
                                            **relative_dev_figures(result.wer, self.baseline_metrics)},
                              state.step)
        samples = result.utterances[: self.cfg.trainer.sample_predictions]
        table = "\n".join(["| reference | hypothesis |", "|---|---|"]
                          + [f"| {u.reference} | {u.hypothesis} |" for u in samples])
        self.writer.add_text("dev/samples", table, state.step)
        if self.pruner is not None:
            for group, magnitudes in self.pruner.magnitudes().items():
                self.writer.add_histogram(f"weights/{group}", magnitudes, state.step)
        if candidate and result.wer < state.best_dev_wer:  # inf until a best exists
            state.best_dev_wer, state.best_step = result.wer, state.step
            self.save("best")
        self.dist.barrier()
        return result

    def model_counts(self) -> dict[str, float]:
        total = sum(p.numel() for p in self.model.parameters())
        nonzero = sum(int(torch.count_nonzero(p)) for p in self.model.parameters())
        return {"params/total": total, "params/nonzero": nonzero,
                "params/sparsity": 1.0 - nonzero / total}

    def evaluate_test_sets(self) -> dict[str, EvaluationResult]:
        """The best checkpoint on the test set and each extra test set, by name."""
        best = load_checkpoint(self.run_dir.best_checkpoint, map_location=self.device)
        self.model.load_state_dict(best["model"])
        results = {}
        for name, loader in self.data.test_loaders().items():
            results[name] = result = evaluate(self.model, loader, self.data.alphabet, self.device,
                                              self.amp_dtype, self.test_decoder, progress=name)
            log.info("%s (best dev checkpoint, step %d, %s decoding): WER %.2f%%  CER %.2f%%",
                     name, self.state.best_step, self.cfg.trainer.decoder.name, result.wer,
                     result.cer)
        return results

    def final_metrics(self, results: dict[str, EvaluationResult], identical: bool,
                      masks_identical: bool | None) -> dict[str, Any]:
        """metrics.json: test figures of every test set, training totals, sizes, pruning."""
        state, test = self.state, results["test"]
        skipped_by_reason = Counter(state.skipped_by_reason) + Counter(self.data.load_skips)
        for result in results.values():
            skipped_by_reason.update(result.skipped_by_reason)
        metrics: dict[str, Any] = {
            "test_wer": test.wer, "test_cer": test.cer, "test_loss": test.loss,
            **{f"{name}_{kind}": getattr(result, kind) for name, result in results.items()
               if name != "test" for kind in ("wer", "cer")},
            "dev_wer": state.best_dev_wer, "best_step": state.best_step,
            "steps": state.step, "epochs": state.epoch,
            "nonfinite_steps": state.nonfinite_steps,
            "skipped_utterances": (state.skipped_utterances + sum(self.data.load_skips.values())
                                   + sum(r.skipped for r in results.values())),
            "skipped_by_reason": dict(sorted(skipped_by_reason.items())),
            "train_seconds": state.train_seconds,
            "train_audio_seconds": state.audio_seconds,
            "throughput_audio_s_per_s": state.audio_seconds / max(state.train_seconds, 1e-9),
            "data_wait_fraction": state.data_wait_seconds / max(state.train_seconds, 1e-9),
            "world_size": self.dist.world_size, "ranks_identical": identical,
            **{k.replace("/", "_"): v for k, v in self.model_counts().items()},
        }
        if self.pruner is not None:
            metrics.update(pruning_metrics(self.pruner, self.prediction))
            metrics["masks_identical"] = masks_identical
        if self.cfg.pruning.baseline:
            metrics.update(relative_to_baseline(metrics, self.cfg.pruning.baseline))
        return metrics

    def log_final_metrics(self, results: dict[str, EvaluationResult],
                          metrics: dict[str, Any]) -> None:
        """Each test set's WER and CER (test_sets/<name>/*) and the hparams table."""
        step = self.state.step
        for name, result in results.items():
            dashboard.log_scalars(self.writer, {f"test_sets/{name}/wer": result.wer,
                                                f"test_sets/{name}/cer": result.cer}, step)
        hparam_metrics = {f"hparams/{name}_{kind}": getattr(result, kind)
                          for name, result in results.items() for kind in ("wer", "cer")}
        hparam_metrics.update({"hparams/dev_wer": self.state.best_dev_wer,
                               "hparams/params_nonzero": metrics["params_nonzero"],
                               "hparams/sparsity": metrics["params_sparsity"]})
        for key in ("relative_test_wer", "relative_test_cer", "param_reduction"):
            if key in metrics:
                hparam_metrics[f"hparams/{key}"] = metrics[key]
        dashboard.log_hparams(self.writer, OmegaConf.to_container(self.cfg, resolve=True),
                              hparam_metrics, step)

    def finish(self) -> dict[str, Any]:
        """Check the ranks agree, evaluate the best checkpoint on every test set and write
        metrics.json (rank 0); returns the metrics (empty on other ranks)."""
        metrics: dict[str, Any] = {}
        # Bitwise, over the parameters only: batch-norm running statistics are each rank's own
        # (DDP sends rank 0's before every forward, so they differ after the last step).
        identical = self.dist.identical_on_all_ranks(dict(self.model.named_parameters()), "weights")
        masks_identical = (self.dist.identical_on_all_ranks(self.pruner.masks_and_thresholds(),
                                                            "pruning masks")
                           if self.pruner is not None else None)
        if self.dist.is_main:
            results = self.evaluate_test_sets()
            metrics = self.final_metrics(results, identical, masks_identical)
            self.run_dir.write_metrics(metrics)
            self.log_final_metrics(results, metrics)
            self.writer.close()
        # Free DDP's reducer, which holds the process group and gloo's pending work, while the
        # interpreter is fully alive: left to the cyclic garbage collector it can be destroyed
        # during interpreter shutdown, where gloo's threads abort the process (a rank ended with
        # "terminate called without an active exception" once, in a loaded CI run).
        self.ddp_model = self.model
        gc.collect()
        self.dist.barrier()
        self.dist.close()
        return metrics


class StartupError(Exception):
    """A setting, input file or run directory that stops a run before it trains. The message
    is the cause's, which names the config key or the file; the cause is chained."""


def train(cfg: TrainConfig | DictConfig, run: RunDirectory) -> dict[str, Any]:
    """Train (or resume) the run in `run` and return the final metrics (empty on other ranks).

    Raises StartupError when setting up fails on a bad setting or input
    (STARTUP_INPUT_ERRORS)."""
    try:
        trainer = Trainer(cfg, run)
    except STARTUP_INPUT_ERRORS as error:
        raise StartupError(str(error)) from error
    if trainer.dist.is_main:
        run.record_start(cfg)
    try:
        return trainer.run()
    finally:
        if trainer.run_lock is not None:
            trainer.run_lock.release()
