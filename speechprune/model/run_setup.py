"""Setting up a run from its config, as `train` does and `predict` repeats without training: the
seeded initial model, the datasets, samplers and loaders the trainer iterates, and the number of
steps. Below training, so that pruning prediction does not depend on the training layer."""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader

from speechprune.config import DataConfig, ModelConfig, TrainerConfig
from speechprune.config_paths import absolute
from speechprune.data.batching import BucketBatchSampler, padding_fraction
from speechprune.data.dataset import (SpeechDataset, evaluation_dataset, evaluation_loader,
                                      make_dataloader)
from speechprune.data.features import FeatureExtractor, load_or_compute_stats, stats_to_dict
from speechprune.data.manifest import load_utterances
from speechprune.data.text import Alphabet
from speechprune.lm.files import LanguageModelError
from speechprune.model.deepspeech2 import DeepSpeech2

log = logging.getLogger(__name__)

# What setting up a run (data, model, pruner, baseline, checkpoint to resume, decoder) raises on
# a bad setting or input; each names its key or file. `predict` sets up the same way.
STARTUP_INPUT_ERRORS = (ValueError, FileNotFoundError, LanguageModelError)


class DataParallelRank(Protocol):
    """This process's place among the data-parallel processes, each of which trains on its own
    share of the batches (training's DistributedContext is one)."""

    @property
    def rank(self) -> int: ...

    @property
    def world_size(self) -> int: ...


@dataclass(frozen=True)
class SingleProcess:
    """The one process of a set-up without data parallelism (`predict`)."""

    rank: int = 0
    world_size: int = 1


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class DataSetup:
    cfg: DataConfig
    alphabet: Alphabet
    features: FeatureExtractor
    feature_stats: Optional[dict[str, Any]]  # global normalization statistics, if used
    train_set: SpeechDataset
    dev_set: SpeechDataset
    test_set: SpeechDataset
    extra_test_sets: dict[str, SpeechDataset]  # data.extra_test_manifests, by name
    train_sampler: BucketBatchSampler
    train_durations: list[float]  # seconds, by train index
    train_padding_fraction: float  # share of padded frames in the first epoch's batches
    # Manifest lines left out when the manifests were read (unreadable audio, outside the
    # duration range), by kind, over every split.
    load_skips: dict[str, int]

    def train_loader(self) -> DataLoader:
        return make_dataloader(self.train_set, self.train_sampler, self.cfg.batching.num_workers)

    def dev_loader(self) -> DataLoader:
        return evaluation_loader(self.dev_set, self.cfg)

    def test_loaders(self) -> dict[str, DataLoader]:
        """The test set ("test") and each extra test set, by name."""
        sets = {"test": self.test_set, **self.extra_test_sets}
        return {name: evaluation_loader(dataset, self.cfg) for name, dataset in sets.items()}


def model_for_data(model_cfg: ModelConfig, data_cfg: DataConfig) -> DeepSpeech2:
    """A freshly initialized model whose input fits the features and whose output fits the
    alphabet of `data_cfg` (seed first for reproducible weights)."""
    return DeepSpeech2(model_cfg, FeatureExtractor(data_cfg.features).num_features,
                       len(Alphabet.from_config(data_cfg.text)))


def total_training_steps(steps_per_epoch: int, trainer: TrainerConfig) -> int:
    """Optimizer steps of a whole run: the epochs' steps, capped by trainer.max_steps."""
    total = steps_per_epoch * trainer.epochs
    return min(total, trainer.max_steps) if trainer.max_steps > 0 else total


def build_data(cfg: DataConfig, seed: int, time_stride: int,
               dist: DataParallelRank) -> DataSetup:
    """Read the manifests (train, dev, test, the extra test sets) and build the datasets and
    the training sampler.

    `time_stride` is the model's reduction of frames (for the CTC length check)."""
    alphabet = Alphabet.from_config(cfg.text)
    train_manifest = absolute(cfg.train_manifest)
    load_skips: Counter[str] = Counter()
    train = load_utterances(train_manifest, cfg, load_skips)
    dev = load_utterances(absolute(cfg.dev_manifest), cfg, load_skips)
    test = load_utterances(absolute(cfg.test_manifest), cfg, load_skips)
    if "test" in cfg.extra_test_manifests or "dev" in cfg.extra_test_manifests:
        raise ValueError("data.extra_test_manifests: 'test' and 'dev' name the main sets; "
                         "choose other names")
    extra = {name: load_utterances(absolute(path), cfg, load_skips)
             for name, path in cfg.extra_test_manifests.items()}
    if not train:
        raise ValueError(f"data.train_manifest={cfg.train_manifest}: no utterances left "
                         f"(check data.min_duration_s / data.max_duration_s)")
    stats = None
    if cfg.features.normalize == "global":
        stats = load_or_compute_stats(train_manifest, train, cfg.features)
    features = FeatureExtractor(cfg.features, stats)
    train_set = SpeechDataset(train, alphabet, cfg.text, features, augment_cfg=cfg.augment,
                              bad_input=cfg.bad_input, seed=seed, time_stride=time_stride,
                              sample_rate=cfg.features.sample_rate)
    lengths = train_set.frame_lengths()
    sampler = BucketBatchSampler.from_config(lengths, cfg.batching, train=True, seed=seed,
                                             num_replicas=dist.world_size, rank=dist.rank)
    return DataSetup(
        cfg=cfg, alphabet=alphabet, features=features, feature_stats=stats_to_dict(stats),
        train_set=train_set,
        dev_set=evaluation_dataset(dev, cfg, alphabet, features, time_stride),
        test_set=evaluation_dataset(test, cfg, alphabet, features, time_stride),
        extra_test_sets={name: evaluation_dataset(utterances, cfg, alphabet, features, time_stride)
                         for name, utterances in extra.items()},
        train_sampler=sampler, train_durations=[u.duration for u in train],
        train_padding_fraction=padding_fraction(sampler.batches(0), lengths),
        load_skips=dict(sorted(load_skips.items())))
