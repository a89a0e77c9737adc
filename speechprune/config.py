"""The typed configuration schema of every command, registered in Hydra's ConfigStore.

Defaults live here and in `conf/`; nowhere else. Every YAML file under `conf/` is merged onto
these dataclasses, so a misspelt key or a value of the wrong type stops at start-up with a
message naming the key (OmegaConf struct mode).

Units are in the field names or comments: seconds (`_s`), milliseconds (`_ms`), steps, epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

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
    # Global statistics are estimated from at most this many training utterances, evenly
    # spaced through the manifest (0: all of them).
    stats_max_utterances: int = 2000


@dataclass
class AugmentConfig:
    """On-the-fly augmentation of training utterances; each part is switchable.

    Every random choice is drawn from a generator seeded by (seed, epoch, utterance index), so a
    resumed or distributed run sees exactly the same augmentation.
    """

    spec_augment: bool = False
    freq_masks: int = 2
    freq_mask_width: int = 15  # bins, maximum width of one mask
    time_masks: int = 2
    time_mask_max_fraction: float = 0.05  # of the utterance length, per mask

    speed_perturb: bool = False
    speed_min: float = 0.9
    speed_max: float = 1.1
    # Factors are drawn on this grid: a coarse grid keeps the resampling ratio's gcd large and
    # the polyphase resampler cheap (0.01 at 16 kHz: at most 100/110-like ratios).
    speed_step: float = 0.01

    noise: bool = False
    noise_prob: float = 0.5
    snr_min_db: float = 10.0
    snr_max_db: float = 30.0
    # Synthetic coloured noise, one colour drawn per utterance: white (flat), pink (1/f power),
    # brown (1/f^2 power).
    noise_colours: list[str] = field(default_factory=lambda: ["white", "pink", "brown"])
    babble_prob: float = 0.3  # of the noisy utterances, the share whose noise is babble
    babble_speakers: int = 3

    reverb: bool = False
    reverb_prob: float = 0.3
    rt60_min_s: float = 0.2
    rt60_max_s: float = 0.7

    # A telephone channel (after room and noise): the narrow band, then G.711 companding.
    telephone: bool = False
    telephone_prob: float = 0.3
    # Band edges in Hz, each drawn per utterance between its min and max (handsets and
    # exchanges differ); the channel runs at 8 kHz, so nothing above 4 kHz survives anyway.
    telephone_low_hz_min: float = 250.0
    telephone_low_hz_max: float = 350.0
    telephone_high_hz_min: float = 3300.0
    telephone_high_hz_max: float = 3500.0
    # 8-bit G.711 companding laws, one drawn per utterance: "mulaw" (North America, Japan),
    # "alaw" (Europe and most of the rest).
    telephone_codecs: list[str] = field(default_factory=lambda: ["mulaw", "alaw"])

    # Vocal tract length perturbation (Jaitly & Hinton 2013): the frequency axis of the power
    # spectrum is warped by a factor drawn per utterance in [vtlp_min, vtlp_max].
    vtlp: bool = False
    vtlp_min: float = 0.9
    vtlp_max: float = 1.1
    # Below this frequency (Hz) the warp is f -> alpha * f; above it a second linear segment
    # brings the Nyquist frequency back onto itself (the paper's 4800 Hz at 16 kHz).
    vtlp_boundary_hz: float = 4800.0


@dataclass
class BatchConfig:
    """Length-bucketed batching bounded by total feature frames (keeps padding low)."""

    # Budget of one batch: batch size x longest utterance, in 10 ms feature frames (before
    # speed perturbation, which may lengthen an utterance by 1 / speed_min).
    max_frames_per_batch: int = 12000
    max_batch_size: int = 64
    sortagrad: bool = True  # first epoch in order of increasing duration (DeepSpeech2)
    num_workers: int = 1
    shuffle: bool = True  # shuffle the order of the (length-bucketed) batches every epoch


@dataclass
class DataConfig:
    """Where the utterances come from and how they become batches."""

    name: str = "tiny"
    train_manifest: str = "data/tiny/train.jsonl"
    dev_manifest: str = "data/tiny/dev.jsonl"
    test_manifest: str = "data/tiny/test.jsonl"
    # More test sets, evaluated with the best checkpoint beside the test set: name -> manifest.
    # Each gives <name>_wer / <name>_cer in metrics.json and test_sets/<name>/* in TensorBoard.
    extra_test_manifests: dict[str, str] = field(default_factory=dict)
    # "auto" guesses from the path: .jsonl/.json, .csv, .tsv (Common Voice), .jsonl.gz (Lhotse),
    # or a directory (LibriSpeech tree); or name it: jsonl, csv, commonvoice, lhotse, librispeech.
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
    # Share of each split's utterances spoken by the natural voices (flite, festival); the rest
    # by espeak-ng speakers.
    natural_share: float = 0.5
    # espeak-ng speakers are every accent x variant pair. Variants that are barely intelligible
    # (whisper, croak, robots, novelty voices) are left out on purpose.
    espeak_accents: list[str] = field(default_factory=lambda: [
        "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-029",
        "en-us-nyc"])
    espeak_variants: list[str] = field(default_factory=lambda: [
        "m1", "m2", "m3", "m4", "m6", "m7", "f1", "f2", "f3", "f4", "Alex", "Andy", "Annie",
        "david", "ed", "linda", "max", "paul", "rob", "steph"])
    # The unseen-voices split (unseen_voices.jsonl): speakers no other split hears, to measure
    # how the model does on voices it never trained on. Its voices are the natural speakers
    # below and every espeak-ng pair whose accent or variant is listed here.
    unseen_fraction: float = 0.1  # share of sentences, disjoint from the other splits' too
    unseen_natural_speakers: list[str] = field(default_factory=lambda: ["rms"])
    unseen_espeak_accents: list[str] = field(default_factory=lambda: ["en-gb-x-gbcwmd"])
    unseen_espeak_variants: list[str] = field(default_factory=lambda: [
        "m5", "m8", "f5", "klatt3", "Gene", "Jacky", "adam", "belinda", "edward", "quincy"])
    # Speaking rate of espeak-ng at rate multiplier 1 (words per minute; espeak's default is 175).
    espeak_words_per_minute: float = 160.0
    # Duration stretch at rate multiplier 1 (>1 is slower; 1.2 sounds most natural for flite).
    flite_duration_stretch: float = 1.2
    festival_duration_stretch: float = 1.1
    # Silence trimming: frames quieter than this (dB below the peak) count as silence; this much
    # of it is kept at either end.
    trim_threshold_db: float = 40.0
    keep_silence_ms: float = 150.0
    peak_level: float = 0.9  # peak absolute amplitude after normalization (full scale = 1)
    # Utterances per worker job (festival synthesizes a whole job in one process).
    job_size: int = 24
    festival_job_size: int = 48
    progress_every_s: float = 10.0  # seconds between progress log lines


@dataclass
class DataBuildConfig:
    corpus: CorpusConfig = field(default_factory=CorpusConfig)


@dataclass
class DataCheckConfig:
    manifest: str = MISSING
    format: str = "auto"
    text: TextConfig = field(default_factory=TextConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    # Largest accepted difference (seconds) between the manifest's duration and the file's.
    duration_tolerance_s: float = 0.1
    # Peak absolute amplitude (full scale 1.0) below which audio counts as silent.
    silence_peak: float = 1e-4
    # The acoustic model's total stride in time: feature frames per CTC output frame
    # (the product of the conv time strides, 2 for the default model).
    time_stride: int = 2
    # Threads decoding audio at once (libsndfile decodes without holding the GIL).
    workers: int = 2


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass
class ModelConfig:
    """DeepSpeech2: 2D convolutions -> recurrent stack -> fully connected -> CTC.

    The defaults are a small model that trains in minutes on two CPU cores; experiment presets
    scale it up. Sizes are per direction (hidden_size) and in feature frames (10 ms each).
    """

    name: str = "bigru"
    # The first `conv_layers` entries of the three lists below are used (1 to 3 in DeepSpeech2).
    conv_layers: int = 2
    conv_channels: list[int] = field(default_factory=lambda: [32, 32, 96])
    # (time, frequency) per conv layer; padding is half the kernel, so a stride-1 conv keeps
    # the number of frames. DeepSpeech2 uses (11, 21) after the first layer; (11, 11) costs a
    # third less CPU time per step at this size.
    conv_kernels: list[list[int]] = field(default_factory=lambda: [[11, 41], [11, 11], [11, 11]])
    # The product of the time strides is the model's time stride (input frames per output frame).
    conv_strides: list[list[int]] = field(default_factory=lambda: [[2, 2], [1, 2], [1, 2]])
    relu_clip: float = 20.0  # clipped ReLU: min(max(x, 0), relu_clip)
    rnn_type: str = "gru"  # "rnn_relu", "rnn_tanh", "gru", "lstm"
    hidden_size: int = 256  # per direction
    num_layers: int = 3
    bidirectional: bool = True
    merge: str = "sum"  # how the two directions combine: "sum" or "concat"
    # Output frames of future context seen by the row convolution after the last recurrent
    # layer of a unidirectional model (ignored when bidirectional).
    lookahead_context: int = 20
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
    # After the linear warm-up: "anneal" divides lr by `anneal` after every epoch (DeepSpeech2
    # uses 1.1-1.2); "cosine" follows half a cosine from lr to 0 at the last step of the run.
    schedule: str = "anneal"
    anneal: float = 1.1
    warmup_steps: int = 0


@dataclass
class TrainerConfig:
    epochs: int = 10
    seed: int = 1
    device: str = "auto"  # "auto", "cpu", "cuda"
    # "fp32", "bf16", "fp16" (GPU only) or "auto": bf16 where the hardware computes it natively
    # (CPUs with AVX-512 BF16 or AMX, GPUs with bf16), fp32 elsewhere.
    precision: str = "fp32"
    grad_clip: float = 400.0
    log_every_steps: int = 10
    eval_every_epochs: int = 1
    sample_predictions: int = 4  # dev predictions written to TensorBoard as text
    max_steps: int = 0  # stop after this many optimizer steps (0: run all epochs)
    checkpoint_every_steps: int = 0  # also save `last` mid-epoch every N steps (0: per epoch)
    threads: int = 0  # torch intra-op threads (0: leave torch's default)
    resume: bool = True  # resume from `last` when the run directory already holds one
    # Decoder of the end-of-training test evaluation (the dev evaluations stay greedy, for
    # speed): `trainer.decoder.name=beam trainer.decoder.lm=lm/tiny`.
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig())


# --------------------------------------------------------------------------------------------
# Pruning: what every method shares. Each method's own settings (schedule, sparsity, block shape,
# penalty) are a subclass of these in its module, speechprune/pruning/methods/<method>.py.
# --------------------------------------------------------------------------------------------


@dataclass
class PruningGroupConfig:
    """One layer group: the weight matrices it selects and when its pruning starts and ends.

    Iterations (`start_itr`, `end_itr` and a method's others) count optimizer steps over the
    whole run (0-based) and are written with a unit so one preset fits any corpus size:
    `2000` (steps), `"1 epoch"` / `"1.5 epochs"` (epochs of `steps_per_epoch` steps) or `"25%"`
    (of the run's total steps).
    """

    # Parameter-name glob patterns (fnmatch over `model.named_parameters()` names).
    patterns: list[str] = field(default_factory=list)
    # Select only parameters with >= 2 dimensions (weight matrices, conv kernels), so a pattern
    # like "fc.*weight" skips the 1-D batch-norm weights next to the linear layer.
    matrices_only: bool = True
    # Paper defaults: start of the 2nd epoch, end at 50% of training.
    start_itr: str = "1 epoch"
    end_itr: str = "50%"


@dataclass
class PruningConfig:
    """Which pruning method runs during training. `pruning=<method>` selects the method's
    subclass, which adds its layer groups (`groups: dict[str, <its PruningGroupConfig
    subclass>]`) and holds only the keys the method reads; `pruning=none` (dense training) is
    DensePruningConfig. (The groups are not declared here: OmegaConf keeps a dict's declared value
    type when a subclass is merged in, so each method's groups would stay untyped.)"""

    method: str = "none"
    # A dense baseline run directory (holds checkpoints/best.pt): source of q for Eq. 1 and the
    # reference for relative WER. null: q comes from the model's own weights at start_itr.
    baseline: Optional[str] = None


@dataclass
class DensePruningConfig(PruningConfig):
    """`pruning=none`. Its `groups` are accepted and not used, so that a preset holding a
    method's layer groups can be swept over `pruning=none,<method>`, giving the pruned runs
    their dense twin in the same sweep."""

    groups: dict[str, Any] = field(default_factory=dict)


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
    # What `speechprune train` returns to a Hydra sweeper (`-m hparams_search=...`).
    objective: SweepObjectiveConfig = field(default_factory=lambda: SweepObjectiveConfig())


@dataclass
class EvaluateConfig:
    # A run directory (its `best` checkpoint), a checkpoint file or an exported model. Not
    # called `model`: that name is the model config group of `train`.
    model_path: str = MISSING
    manifest: str = MISSING
    format: str = "auto"
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig())
    # Where predictions.jsonl and summary.json go ("": <run dir>/evaluation/<manifest name>).
    output_dir: str = ""
    # Exit with status 1 when the corpus WER (percent) is above this (negative: never).
    max_wer: float = -1.0
    max_cer: float = -1.0
    device: str = "auto"
    # CPU threads (0: torch's default). With 2 or more, an exported sparse model runs the two
    # directions of each bidirectional layer on their own threads.
    threads: int = 0


@dataclass
class TranscribeConfig:
    model_path: str = MISSING
    files: list[str] = field(default_factory=list)
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig())
    device: str = "auto"
    threads: int = 0  # as in EvaluateConfig


@dataclass
class ExportConfig:
    # A run directory (its `which` checkpoint) or a checkpoint file. Not called `model`: Hydra
    # would read `model=...` as a choice in the conf/model group.
    source: str = MISSING
    # The export file to write.
    out: str = MISSING
    which: str = "best"
    # Pruned matrices: "auto" (per tensor the smallest of dense, csr, bitmask, bsr), "csr",
    # "bitmask" or "bsr" (block-sparse rows, for pruning=block).
    layout: str = "auto"
    # "speechprune" (the compact sparse format that `transcribe` and `evaluate` run) or "onnx"
    # (the dense-stored model for other runtimes; `layout` and `values` do not apply).
    format: str = "speechprune"
    # Weights: "fp32"; "fp16" (the non-zeros of sparse tensors; ~1e-3 relative error); "int8"
    # (every weight matrix, one scale per output row; runs on the int8 kernels).
    values: str = "fp32"
    # Recurrent layers with at least this share of zero hidden-to-hidden weights run the sparse
    # kernels when the export is loaded; denser ones run torch's dense kernels.
    sparse_min_sparsity: float = 0.5


def register_configs() -> None:
    """Register every command's schema so `conf/*.yaml` can name it in its defaults list."""
    store = ConfigStore.instance()
    store.store(name="train_schema", node=TrainConfig)
    store.store(name="data_build_schema", node=DataBuildConfig)
    store.store(name="data_check_schema", node=DataCheckConfig)
    store.store(name="evaluate_schema", node=EvaluateConfig)
    store.store(name="transcribe_schema", node=TranscribeConfig)
    store.store(name="export_schema", node=ExportConfig)
    store.store(name="lm_build_schema", node=LmBuildConfig)
    store.store(name="lm_tune_schema", node=LmTuneConfig)
    store.store(group="decoder", name="decoder_schema", node=DecoderConfig)
    store.store(group="pruning", name="none_schema", node=DensePruningConfig)
    store.store(name="report_schema", node=ReportConfig)


def as_dict(cfg: Any) -> dict:
    """A resolved plain-dict copy of a config (for saving next to a run)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A plain-dict config as `{"a.b": value}`, with lists and None turned into strings: what
    the HPARAMS dashboard takes (numbers, booleans, strings), and hashable for comparing runs."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


# --------------------------------------------------------------------------------------------
# Decoding with an n-gram language model (`speechprune lm build`, `speechprune lm tune`)
# --------------------------------------------------------------------------------------------


@dataclass
class DecoderConfig:
    """How CTC outputs become text: greedy (best path) or beam search with a KenLM n-gram LM.

    Select with `decoder=greedy|beam` (evaluate, transcribe) or `trainer.decoder.name=beam`.
    """

    name: str = "greedy"  # "greedy" or "beam"
    # A language-model directory written by `speechprune lm build` (lm.bin, lexicon.txt,
    # chars.bin, decoder.json). "": beam search without a language model.
    lm: str = ""
    # true: only words of the LM's vocabulary (lexicon.txt) can be output, scored by the word
    # LM; false: lexicon-free, any spelling, scored by the character LM (chars.bin).
    lexicon: bool = True
    beam_size: int = 100  # hypotheses kept after each output frame
    beam_size_token: int = 0  # symbols tried per frame (0: all of them)
    # Hypotheses scoring more than this (natural log) below the best are dropped.
    beam_threshold: float = 25.0
    # LM weight (alpha) and word insertion bonus (beta, per word; per word boundary in
    # lexicon-free mode). null: the tuned values in <lm>/decoder.json, else the untuned ones.
    alpha: Optional[float] = None
    beta: Optional[float] = None
    untuned_alpha: float = 0.5
    untuned_beta: float = 0.0
    # Score of a word outside the lexicon (-inf: never output one).
    unk_score: float = float("-inf")


@dataclass
class LmBuildConfig:
    """`speechprune lm build`: a word n-gram LM (ARPA + KenLM binary) from transcripts or text."""

    # Manifests whose transcripts are the LM's text (normalized like training transcripts).
    manifests: list[str] = field(default_factory=lambda: ["data/tiny/train.jsonl"])
    # Plain-text files, one sentence per line, added to (or instead of) the manifests' text.
    text_files: list[str] = field(default_factory=list)
    # Add every usable sentence of Debian's fortunes and WordNet examples: the text the built-in
    # corpora are synthesized from (~62,000 sentences; combine with exclude_manifests).
    debian_text: bool = False
    # Sentences equal to a transcript of these manifests (normalized) are left out, so that an
    # LM built from a large text never saw the dev/test sentences it is measured on.
    exclude_manifests: list[str] = field(default_factory=list)
    output_dir: str = "lm/tiny"
    order: int = 3  # word n-gram order (KenLM supports up to 6)
    # Character n-gram order of the lexicon-free decoder's LM (0: do not build chars.bin).
    char_order: int = 6
    # lmplz's memory cap (its -S): without one it reserves a large share of the machine.
    memory: str = "1G"
    # Kneser-Ney discounts cannot be estimated on small text: use lmplz's fallback values.
    discount_fallback: bool = True
    # Where lmplz and build_binary are ("": the environment's bin/ (`make kenlm` puts them
    # there), then PATH).
    kenlm_bin_dir: str = ""
    text: TextConfig = field(default_factory=TextConfig)


@dataclass
class LmTuneConfig:
    """`speechprune lm tune`: search alpha/beta on a dev manifest, write <lm>/decoder.json."""

    # Run directory or checkpoint (not `model`: that is the model config group of `train`).
    model_path: str = MISSING
    manifest: str = MISSING  # dev manifest
    format: str = "auto"
    decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig(name="beam"))
    trials: int = 30
    alpha_min: float = 0.0
    alpha_max: float = 5.0
    beta_min: float = -3.0
    beta_max: float = 3.0
    seed: int = 1
    # Tune on at most this many utterances of the manifest, evenly spaced (0: all).
    max_utterances: int = 0
    device: str = "auto"


# --------------------------------------------------------------------------------------------
# Sweeps and reports (`speechprune train -m`, `speechprune report`)
# --------------------------------------------------------------------------------------------


@dataclass
class SweepObjectiveConfig:
    """The value `speechprune train` returns for a Hydra sweeper to minimize."""

    # A number of metrics.json: "dev_wer" (the default: tuning on test would leak), "test_wer", ...
    metric: str = "dev_wer"
    # Budget of non-zero parameters (0: none). A run above it scores
    # metric + over_budget_penalty * (params_nonzero / max_params_nonzero - 1).
    max_params_nonzero: int = 0
    # Metric points per 100% excess: with 100, a run 10% over budget scores 10 points worse.
    over_budget_penalty: float = 100.0


@dataclass
class ReportConfig:
    """`speechprune report <run or sweep dirs>`: table, plots and fits across runs."""

    # Run directories or sweep directories (searched for run directories at any depth).
    runs: list[str] = field(default_factory=list)
    # Where report.md, runs.csv and the PNG figures go ("": <first directory>/report).
    output_dir: str = ""
    # The dense baseline every run is compared with (a run directory). null: the run's own
    # pruning.baseline, else the dense run of the same model with the most parameters.
    baseline: Optional[str] = None
    # Non-zero parameter counts at which each family's fitted power law predicts the WER
    # (empty: one untried size inside each family's range).
    predict_params: list[int] = field(default_factory=list)
    dpi: int = 120  # resolution of the PNG figures
