"""The typed configuration schema of every command, registered in Hydra's ConfigStore.

Defaults live here and in `conf/`; nowhere else. Every YAML file under `conf/` is merged onto
these dataclasses, so a misspelt key or a value of the wrong type stops at start-up with a
message naming the key (OmegaConf struct mode).

Units are in the field names or comments: seconds (`_s`), milliseconds (`_ms`), steps, epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# --------------------------------------------------------------------------------------------
# Data: text, features, augmentation, batching
# --------------------------------------------------------------------------------------------


@dataclass
class TextConfig:
    """How transcripts are normalized and mapped to CTC output symbols."""

    # Output symbols in order; the CTC blank is added at index 0 and is not part of this string.
    alphabet: str = "abcdefghijklmnopqrstuvwxyz' "
    lowercase: bool = True
    numbers_to_words: bool = True
    # Punctuation other than the apostrophe becomes a space (then spaces are collapsed).
    strip_punctuation: bool = True
    # What to do with a character that is still outside the alphabet after normalization:
    # "error" stops and names the file and line, "drop" removes the character.
    out_of_alphabet: str = "error"


@dataclass
class FeatureConfig:
    """Acoustic features computed with torchaudio from 16 kHz mono audio."""

    kind: str = "spectrogram"  # "spectrogram" (DeepSpeech2 log-linear) or "logmel"
    sample_rate: int = 16000
    window_ms: float = 20.0
    hop_ms: float = 10.0
    n_mels: int = 80  # logmel only; the spectrogram has window_samples // 2 + 1 bins (161)
    # "utterance": per-utterance mean/variance per bin; "global": statistics from the training
    # set (computed once and cached next to the manifest); "none".
    normalize: str = "utterance"


@dataclass
class AugmentConfig:
    """On-the-fly augmentation of training utterances; each part is switchable."""

    spec_augment: bool = False
    freq_masks: int = 2
    freq_mask_width: int = 15  # bins, maximum width of one mask
    time_masks: int = 2
    time_mask_max_fraction: float = 0.05  # of the utterance length, per mask

    speed_perturb: bool = False
    speed_min: float = 0.9
    speed_max: float = 1.1

    noise: bool = False
    noise_prob: float = 0.5
    snr_min_db: float = 10.0
    snr_max_db: float = 30.0
    babble_prob: float = 0.3  # of the noisy utterances, the share whose noise is babble
    babble_speakers: int = 3

    reverb: bool = False
    reverb_prob: float = 0.3
    rt60_min_s: float = 0.2
    rt60_max_s: float = 0.7


@dataclass
class BatchConfig:
    """Length-bucketed batching bounded by total feature frames (keeps padding low)."""

    max_frames_per_batch: int = 12000  # sum of padded frames in one batch, 10 ms frames
    max_batch_size: int = 64
    sortagrad: bool = True  # first epoch in order of increasing duration (DeepSpeech2)
    num_workers: int = 1
    shuffle: bool = True


@dataclass
class DataConfig:
    """Where the utterances come from and how they become batches."""

    name: str = "tiny"
    train_manifest: str = "data/tiny/train.jsonl"
    dev_manifest: str = "data/tiny/dev.jsonl"
    test_manifest: str = "data/tiny/test.jsonl"
    # "auto" guesses from the path: .jsonl/.json, .csv, .tsv (Common Voice), or a directory
    # (LibriSpeech tree).
    format: str = "auto"
    min_duration_s: float = 0.0
    max_duration_s: float = 30.0
    # A bad utterance (missing/corrupt audio, transcript too long for CTC): "skip" drops it
    # with a counted warning, "error" stops with the file and line.
    bad_input: str = "skip"
    text: TextConfig = field(default_factory=TextConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    batching: BatchConfig = field(default_factory=BatchConfig)


# --------------------------------------------------------------------------------------------
# Corpus synthesis (`speechprune data build`)
# --------------------------------------------------------------------------------------------


@dataclass
class CorpusConfig:
    """An embedded corpus synthesized offline with Debian's text-to-speech engines."""

    name: str = "tiny"  # "tiny" (AN4-like small vocabulary) or "sentences" (large vocabulary)
    output_dir: str = "data/${corpus.name}"
    target_hours: float = 0.75
    seed: int = 1234
    sample_rate: int = 16000
    # Shares of *speakers* and of *sentences* held out for dev and test (disjoint from train).
    dev_fraction: float = 0.1
    test_fraction: float = 0.1
    workers: int = 2
    # Varied delivery per utterance: rate multiplier range and pitch shift range (semitones).
    rate_min: float = 0.85
    rate_max: float = 1.15
    pitch_min: float = -3.0
    pitch_max: float = 3.0
    # Sentence length bounds for the `sentences` corpus (words).
    min_words: int = 3
    max_words: int = 20


@dataclass
class DataBuildConfig:
    corpus: CorpusConfig = field(default_factory=CorpusConfig)


@dataclass
class DataCheckConfig:
    manifest: str = MISSING
    format: str = "auto"
    text: TextConfig = field(default_factory=TextConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    # Relative tolerance between the manifest's duration and the file's.
    duration_tolerance_s: float = 0.1
    # Peak absolute amplitude below which audio counts as silent.
    silence_peak: float = 1e-4


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """DeepSpeech2: 2D convolutions -> recurrent stack -> fully connected -> CTC."""

    name: str = "bigru"
    conv_layers: int = 2
    conv_channels: list[int] = field(default_factory=lambda: [32, 32])
    # (time, frequency) per conv layer.
    conv_kernels: list[list[int]] = field(default_factory=lambda: [[11, 41], [11, 21]])
    conv_strides: list[list[int]] = field(default_factory=lambda: [[2, 2], [1, 2]])
    relu_clip: float = 20.0
    rnn_type: str = "gru"  # "rnn_relu", "rnn_tanh", "gru", "lstm"
    hidden_size: int = 256
    num_layers: int = 3
    bidirectional: bool = True
    merge: str = "sum"  # how the two directions combine: "sum" or "concat"
    lookahead_context: int = 20  # frames of future context for unidirectional models
    batch_norm: bool = True  # sequence-wise batch norm between recurrent layers
    fc_hidden: int = 0  # optional hidden fully connected layer before the output (0: none)


# --------------------------------------------------------------------------------------------
# Optimisation and the training loop
# --------------------------------------------------------------------------------------------


@dataclass
class OptimConfig:
    name: str = "sgd"  # "sgd" (Nesterov momentum, as DeepSpeech2) or "adamw"
    lr: float = 3e-4
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    # Per-epoch annealing: lr /= anneal after every epoch (DeepSpeech2 uses 1.1-1.2).
    anneal: float = 1.1
    warmup_steps: int = 0


@dataclass
class TrainerConfig:
    epochs: int = 10
    seed: int = 1
    device: str = "auto"  # "auto", "cpu", "cuda"
    precision: str = "fp32"  # "fp32", "bf16", "fp16" (the last two on GPU)
    grad_clip: float = 400.0
    log_every_steps: int = 10
    eval_every_epochs: int = 1
    sample_predictions: int = 4  # dev predictions written to TensorBoard as text
    max_steps: int = 0  # stop after this many optimizer steps (0: run all epochs)
    threads: int = 0  # torch intra-op threads (0: leave torch's default)
    resume: bool = True  # resume from `last` when the run directory already holds one
    decoder: str = "greedy"


# --------------------------------------------------------------------------------------------
# Pruning (the methods are filled in by the pruning issue; `none` trains dense)
# --------------------------------------------------------------------------------------------


@dataclass
class PruningGroupConfig:
    """One layer group with its own threshold schedule (Narang et al. 2017)."""

    # Parameter-name glob patterns (fnmatch) that select the group's weight matrices.
    patterns: list[str] = field(default_factory=list)
    # Iterations may be given as steps (int >= 1), or as fractions of total training (0 < x < 1).
    start_itr: float = 0.0
    ramp_itr: float = 0.0
    end_itr: float = 0.0
    freq: int = 100
    # Slopes: given explicitly, or (when start_slope <= 0) derived with Eq. 1 from the
    # `percentile` of |w| per matrix.
    start_slope: float = 0.0
    ramp_slope: float = 0.0
    ramp_multiplier: float = 1.5
    percentile: float = 90.0


@dataclass
class PruningConfig:
    method: str = "none"
    # A dense baseline run directory: source of q (Eq. 1) and the reference for relative WER.
    baseline: Optional[str] = None
    groups: dict[str, PruningGroupConfig] = field(default_factory=dict)
    # Method-specific settings (target sparsity, block shape, L1 strength...).
    target_sparsity: float = 0.9
    block_shape: list[int] = field(default_factory=lambda: [4, 4])
    l1_strength: float = 0.0


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    # A short label for the run directory and the reports.
    experiment_name: str = "default"


@dataclass
class EvaluateConfig:
    # A run directory (its `best` checkpoint) or a checkpoint file.
    model: str = MISSING
    manifest: str = MISSING
    format: str = "auto"
    decoder: str = "greedy"
    output_dir: str = "."
    # Exit with status 1 when the corpus WER (percent) is above this (negative: never).
    max_wer: float = -1.0
    max_cer: float = -1.0
    batch_frames: int = 20000
    device: str = "auto"


@dataclass
class TranscribeConfig:
    model: str = MISSING
    files: list[str] = field(default_factory=list)
    decoder: str = "greedy"
    device: str = "auto"


def register_configs() -> None:
    """Register every command's schema so `conf/*.yaml` can name it in its defaults list."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="data_build_schema", node=DataBuildConfig)
    store.store(name="data_check_schema", node=DataCheckConfig)
    store.store(name="evaluate_schema", node=EvaluateConfig)
    store.store(name="transcribe_schema", node=TranscribeConfig)


def as_dict(cfg: Any) -> dict:
    """A resolved plain-dict copy of a config (for saving next to a run)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
