"""The speech dataset: manifest utterances -> (augmented) normalized features and encoded
transcripts, and the collation of examples into zero-padded batches.

An utterance is a whole file or a span of one (`Utterance.offset`); only the span is read.
A bad utterance (missing, corrupt or empty audio, NaN or infinite samples, a span past the end
of its file, a transcript outside the alphabet, or one too long for CTC at the model's time
stride) never crashes an epoch: with bad_input="skip" it becomes a `Skipped` marker that
`collate` counts by kind, with bad_input="error" it raises `BadUtteranceError` naming the
manifest line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from speechprune.config import AugmentConfig, DataConfig, TextConfig
from speechprune.data.audio import AudioError, audio_duration, load_audio
from speechprune.data.augment import Augmenter, augmentation_rng
from speechprune.data.batching import BucketBatchSampler
from speechprune.data.features import FeatureExtractor
from speechprune.data.manifest import Utterance
from speechprune.data.text import Alphabet, TranscriptError, ctc_min_frames, normalize_text

BAD_INPUT_POLICIES = ("skip", "error")


class BadUtteranceError(ValueError):
    """An utterance that cannot be trained on; the message names the manifest line."""


@dataclass
class Example:
    """One utterance ready for batching."""

    index: int  # position in the dataset's utterance list
    features: torch.Tensor  # (frames, num_features) float32
    labels: torch.Tensor  # (label_length,) int64, alphabet indices (0 is the CTC blank)
    text: str  # the normalized transcript


@dataclass
class Skipped:
    """Stands in for an utterance skipped under bad_input="skip"."""

    index: int
    reason: str  # one sentence, starting with the manifest line
    kind: str  # what is wrong, in the words of `speechprune data check` (see skip_kind)


@dataclass
class Batch:
    """Zero-padded examples; shapes use B = examples kept (skipped ones are only counted)."""

    features: torch.Tensor  # (B, time, freq) float32, zero padded past feature_lengths
    feature_lengths: torch.Tensor  # (B,) int64, frames
    targets: torch.Tensor  # (B, max_label) int64, padded with 0 past target_lengths
    target_lengths: torch.Tensor  # (B,) int64
    indices: torch.Tensor  # (B,) int64, dataset positions
    texts: list[str]  # normalized reference transcripts
    skipped: int = 0  # utterances of this batch that were skipped
    skip_reasons: list[str] = field(default_factory=list)
    skip_kinds: list[str] = field(default_factory=list)  # the kind of each skip_reasons entry

    @property
    def size(self) -> int:
        return len(self.texts)

    @property
    def padding_fraction(self) -> float:
        """Share of the (B, time) feature frames that are padding."""
        total = self.features.shape[0] * self.features.shape[1]
        return 0.0 if total == 0 else 1.0 - float(self.feature_lengths.sum()) / total

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> "Batch":
        """A copy with every tensor on `device`."""
        def move(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(device, non_blocking=non_blocking)

        return Batch(move(self.features), move(self.feature_lengths), move(self.targets),
                     move(self.target_lengths), move(self.indices), list(self.texts),
                     self.skipped, list(self.skip_reasons), list(self.skip_kinds))

    def pin_memory(self) -> "Batch":
        """Page-locked copy, called by DataLoader(pin_memory=True)."""
        return Batch(self.features.pin_memory(), self.feature_lengths.pin_memory(),
                     self.targets.pin_memory(), self.target_lengths.pin_memory(),
                     self.indices.pin_memory(), self.texts, self.skipped, self.skip_reasons,
                     self.skip_kinds)


def collate(examples: Sequence[Union[Example, Skipped]]) -> Batch:
    """Stack examples into a zero-padded Batch; `Skipped` markers are counted, not stacked.

    A batch where every utterance was skipped has B = 0 (features of shape (0, 0, 0)).
    """
    kept = [e for e in examples if isinstance(e, Example)]
    skipped = [e for e in examples if isinstance(e, Skipped)]
    if kept:
        num_features = kept[0].features.shape[1]
        longest = max(e.features.shape[0] for e in kept)
        longest_label = max(e.labels.numel() for e in kept)
    else:
        num_features = longest = longest_label = 0
    features = torch.zeros(len(kept), longest, num_features, dtype=torch.float32)
    targets = torch.zeros(len(kept), longest_label, dtype=torch.int64)
    for row, example in enumerate(kept):
        features[row, : example.features.shape[0]] = example.features
        targets[row, : example.labels.numel()] = example.labels
    return Batch(
        features=features,
        feature_lengths=torch.tensor([e.features.shape[0] for e in kept], dtype=torch.int64),
        targets=targets,
        target_lengths=torch.tensor([e.labels.numel() for e in kept], dtype=torch.int64),
        indices=torch.tensor([e.index for e in kept], dtype=torch.int64),
        texts=[e.text for e in kept],
        skipped=len(skipped),
        skip_reasons=[s.reason for s in skipped],
        skip_kinds=[s.kind for s in skipped],
    )


class SpeechDataset(Dataset):
    """Utterances -> `Example` (or `Skipped`), loading and featurizing on access.

    augment_cfg: None for no augmentation (dev/test); otherwise training augmentation drawn
    from augmentation_rng(seed, epoch, index). Call `set_epoch` before each epoch (DataLoader
    workers that are not persistent copy the dataset, and with it the epoch, at every epoch).
    time_stride: the model's downsampling in time; an utterance whose frames // time_stride is
    below ctc_min_frames(labels) cannot be aligned and counts as bad.
    """

    def __init__(self, utterances: Sequence[Utterance], alphabet: Alphabet,
                 text_cfg: TextConfig, features: FeatureExtractor,
                 augment_cfg: Optional[AugmentConfig] = None, bad_input: str = "skip",
                 seed: int = 0, time_stride: int = 1, sample_rate: int = 16000) -> None:
        if bad_input not in BAD_INPUT_POLICIES:
            raise ValueError(f"data.bad_input must be one of {BAD_INPUT_POLICIES}, "
                             f"got {bad_input!r}")
        if time_stride < 1:
            raise ValueError(f"time_stride must be >= 1, got {time_stride}")
        if features.cfg.sample_rate != sample_rate:
            raise ValueError(f"the features expect {features.cfg.sample_rate} Hz audio but the "
                             f"dataset loads {sample_rate} Hz; make them equal")
        self.utterances = list(utterances)
        self.alphabet = alphabet
        self.text_cfg = text_cfg
        self.features = features
        self.augmenter = Augmenter(augment_cfg, sample_rate) if augment_cfg is not None else None
        self.bad_input = bad_input
        self.seed = seed
        self.time_stride = time_stride
        self.sample_rate = sample_rate
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.utterances)

    def frame_lengths(self) -> list[int]:
        """Feature frames of every utterance from the manifest durations: the `lengths` of a
        BucketBatchSampler. A duration the manifest lacks (NaN) is read from the file header;
        an unreadable file counts 0 frames (it is skipped or reported when loaded)."""
        return [self.features.frames_for_duration(_known_duration(u)) for u in self.utterances]

    def __getitem__(self, index: int) -> Union[Example, Skipped]:
        utterance = self.utterances[index]
        try:
            return self._example(index, utterance)
        except (AudioError, TranscriptError, BadUtteranceError) as error:
            reason = _with_source(str(error), utterance, index)
            if self.bad_input == "error":
                raise BadUtteranceError(
                    f"{reason}. Fix or remove the manifest line, or set data.bad_input=skip"
                ) from None
            return Skipped(index, reason, skip_kind(error))

    def _example(self, index: int, utterance: Utterance) -> Example:
        text = normalize_text(utterance.text, self.text_cfg)
        labels = self.alphabet.encode(text, where=utterance.source)
        waveform = load_audio(utterance.audio_filepath, self.sample_rate, *utterance.span)
        rng, power_warp = None, None
        if self.augmenter is not None:
            rng = augmentation_rng(self.seed, self.epoch, index)
            waveform, log = self.augmenter.waveform(
                waveform, rng, lambda count, r: self._babble_voices(index, count, r))
            power_warp = self.augmenter.power_warp(log)
        features = self.features(torch.from_numpy(waveform), power_warp)
        if self.augmenter is not None:
            features = self.augmenter.features(features, rng)
        output_frames = features.shape[0] // self.time_stride
        needed = ctc_min_frames(labels)
        if output_frames < needed:
            raise BadUtteranceError(
                f"transcript too long for its audio: CTC needs {needed} output frames but "
                f"{features.shape[0]} feature frames at time stride {self.time_stride} give "
                f"{output_frames}")
        return Example(index, features, torch.tensor(labels, dtype=torch.int64), text)

    def _babble_voices(self, index: int, count: int,
                       rng: np.random.Generator) -> list[np.ndarray]:
        """Waveforms of up to `count` other utterances for babble noise (unreadable ones are
        left out)."""
        if len(self.utterances) < 2:
            return []
        others = rng.choice(len(self.utterances) - 1, size=min(count, len(self.utterances) - 1),
                            replace=False)
        voices = []
        for other in others:
            other = int(other) + (1 if other >= index else 0)  # every index but this one
            try:
                voice = self.utterances[other]
                voices.append(load_audio(voice.audio_filepath, self.sample_rate, *voice.span))
            except AudioError:
                continue
        return voices


def make_dataloader(dataset: SpeechDataset, batch_sampler, num_workers: int,
                    pin_memory: bool = False) -> DataLoader:
    """A DataLoader of `Batch`es following `batch_sampler` (e.g. a BucketBatchSampler).

    Workers are not persistent so that `dataset.set_epoch` reaches them every epoch. Every
    iteration draws the workers' base seed from the loader's generator: one of its own, seeded
    by the dataset's (seed, epoch), so that the global torch RNG a checkpoint saves is left
    alone (a run resumed mid-epoch draws once more than an uninterrupted one) and the workers'
    seeds follow the epoch as the augmentation does.
    """
    generator = torch.Generator().manual_seed(
        int(np.random.SeedSequence([dataset.seed, dataset.epoch]).generate_state(1)[0]))
    return DataLoader(dataset, batch_sampler=batch_sampler, collate_fn=collate,
                      num_workers=num_workers, pin_memory=pin_memory, persistent_workers=False,
                      generator=generator)



def evaluation_dataset(utterances: list[Utterance], cfg: DataConfig, alphabet: Alphabet,
                       features: FeatureExtractor, time_stride: int) -> SpeechDataset:
    """A dataset without augmentation (dev, test, `speechprune evaluate`)."""
    return SpeechDataset(utterances, alphabet, cfg.text, features, augment_cfg=None,
                         bad_input=cfg.bad_input, seed=0, time_stride=time_stride,
                         sample_rate=cfg.features.sample_rate)


def evaluation_loader(dataset: SpeechDataset, cfg: DataConfig) -> DataLoader:
    """Batches of similar length in a fixed order, covering every utterance once."""
    sampler = BucketBatchSampler.from_config(dataset.frame_lengths(), cfg.batching, train=False)
    return make_dataloader(dataset, sampler, cfg.batching.num_workers)

def skip_kind(error: Exception) -> str:
    """The kind of a bad utterance's error: an AudioError's own (missing, unreadable, empty,
    non_finite), else the transcript's problem as `speechprune data check` names it."""
    if isinstance(error, AudioError):
        return error.kind
    if isinstance(error, TranscriptError):
        return "out_of_alphabet"
    return "too_long_transcript"  # the one BadUtteranceError `_example` raises


def describe_skips(by_kind: Mapping[str, int]) -> str:
    """Skip counts for a log line: "empty: 1, non_finite: 2" (kinds in alphabetical order)."""
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(by_kind.items()))


def _with_source(message: str, utterance: Utterance, index: int) -> str:
    """`message` prefixed with the manifest line unless it already names it."""
    where = utterance.source or f"utterance {index} ({utterance.audio_filepath})"
    return message if message.startswith(where) else f"{where}: {message}"


def _known_duration(utterance: Utterance) -> float:
    """Seconds of `utterance`: from the manifest, else the file header, else 0."""
    if math.isfinite(utterance.duration):
        return utterance.duration
    try:
        return audio_duration(utterance.audio_filepath)
    except AudioError:
        return 0.0
