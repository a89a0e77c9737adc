"""Acoustic features with torchaudio: the DeepSpeech2 log spectrogram or log-mel filterbanks,
normalized per utterance or with global statistics of the training set.

Shapes: a waveform is (samples,) float32 at `FeatureConfig.sample_rate`; features are
(frames, num_features) float32, one frame every `hop_ms` (10 ms by default). Frames are centred
on multiples of the hop (the signal is zero padded by half a window at both ends), so
`num_frames(samples) = 1 + samples // hop_samples`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torchaudio

from speechprune import atomic_write
from speechprune.config import FeatureConfig
from speechprune.data.audio import load_audio
from speechprune.data.manifest import Utterance

FEATURE_KINDS = ("spectrogram", "logmel")
NORMALIZATIONS = ("utterance", "global", "none")
# Smallest standard deviation a bin is divided by: a constant bin (silence, a masked band)
# stays finite instead of exploding.
STD_FLOOR = 1e-5
# Added to mel energies before the log; far below speech energies at full scale = 1.
MEL_LOG_OFFSET = 1e-6
# Maps a linear-frequency power spectrum (..., bins, frames) to one of the same shape before the
# filterbank and the log (augmentation: VTLP, data/augment.py).
PowerWarp = Callable[[torch.Tensor], torch.Tensor]


class FeatureStatsError(ValueError):
    """Global normalization statistics that are missing or do not fit the feature config."""


@dataclass(frozen=True)
class FeatureStats:
    """Mean and standard deviation of every feature bin over a set of utterances.

    `mean` and `std` have shape (num_features,); `frames` is how many frames they summarize.
    """

    kind: str
    num_features: int
    frames: int
    mean: torch.Tensor
    std: torch.Tensor

    def save(self, path: str | Path) -> None:
        """Write the statistics as a small JSON file (atomically)."""
        entry = {"kind": self.kind, "num_features": self.num_features, "frames": self.frames,
                 "mean": self.mean.tolist(), "std": self.std.tolist()}
        atomic_write.write_text(path, json.dumps(entry))

    @classmethod
    def load(cls, path: str | Path) -> "FeatureStats":
        path = Path(path)
        if not path.is_file():
            raise FeatureStatsError(
                f"{path}: feature statistics not found; compute them with "
                "compute_feature_stats() or set data.features.normalize=utterance")
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            mean = torch.tensor(entry["mean"], dtype=torch.float32)
            std = torch.tensor(entry["std"], dtype=torch.float32)
            stats = cls(str(entry["kind"]), int(entry["num_features"]), int(entry["frames"]),
                        mean, std)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise FeatureStatsError(
                f"{path}: not a feature statistics file ({error}); delete it to recompute"
            ) from None
        if mean.shape != (stats.num_features,) or std.shape != (stats.num_features,):
            raise FeatureStatsError(f"{path}: mean/std do not have {stats.num_features} bins; "
                                    "delete it to recompute")
        return stats


def stats_to_dict(stats: Optional[FeatureStats]) -> Optional[dict[str, Any]]:
    """The statistics as a checkpoint stores them (tensors kept)."""
    return None if stats is None else asdict(stats)


def stats_from_dict(entry: Optional[dict[str, Any]]) -> Optional[FeatureStats]:
    """The statistics a checkpoint stored with `stats_to_dict`."""
    return None if entry is None else FeatureStats(**entry)


def _validate(cfg: FeatureConfig) -> None:
    if cfg.kind not in FEATURE_KINDS:
        raise ValueError(f"data.features.kind must be one of {FEATURE_KINDS}, got {cfg.kind!r}")
    if cfg.normalize not in NORMALIZATIONS:
        raise ValueError(
            f"data.features.normalize must be one of {NORMALIZATIONS}, got {cfg.normalize!r}")
    if cfg.sample_rate <= 0 or cfg.window_ms <= 0 or cfg.hop_ms <= 0:
        raise ValueError("data.features.sample_rate, window_ms and hop_ms must be positive")
    if cfg.kind == "logmel" and cfg.n_mels <= 0:
        raise ValueError(f"data.features.n_mels must be positive, got {cfg.n_mels}")


class FeatureExtractor:
    """Waveform (samples,) -> normalized features (frames, num_features), float32.

    `stats` is required when `cfg.normalize == "global"` (see `compute_feature_stats`). A plain,
    picklable object so DataLoader workers can each hold one.
    """

    def __init__(self, cfg: FeatureConfig, stats: Optional[FeatureStats] = None) -> None:
        _validate(cfg)
        self.cfg = cfg
        # A plain int: reading a DictConfig field costs ~30 us, seconds over a 100k-line manifest.
        self.sample_rate = int(cfg.sample_rate)
        self.window_samples = int(round(cfg.sample_rate * cfg.window_ms / 1000))
        self.hop_samples = int(round(cfg.sample_rate * cfg.hop_ms / 1000))
        common = dict(win_length=self.window_samples, hop_length=self.hop_samples,
                      window_fn=torch.hann_window, power=2.0, center=True, pad_mode="constant")
        if cfg.kind == "spectrogram":
            # DeepSpeech2: the FFT is the window, 161 linear bins at 16 kHz and 20 ms.
            self._transform = torchaudio.transforms.Spectrogram(n_fft=self.window_samples,
                                                                **common)
        else:
            # The window zero padded to a power of two (as Kaldi): 80 mel filters on 161 bins
            # would leave the narrowest low-frequency filters empty.
            n_fft = 1 << (self.window_samples - 1).bit_length()
            self._transform = torchaudio.transforms.MelSpectrogram(
                sample_rate=cfg.sample_rate, n_fft=n_fft, n_mels=cfg.n_mels, **common)
        if cfg.normalize == "global":
            if stats is None:
                raise FeatureStatsError(
                    "data.features.normalize=global needs training-set statistics: pass "
                    "stats=load_or_compute_stats(...), or set data.features.normalize=utterance")
            if stats.kind != cfg.kind or stats.num_features != self.num_features:
                raise FeatureStatsError(
                    f"feature statistics are for {stats.kind} with {stats.num_features} bins, "
                    f"but the config asks for {cfg.kind} with {self.num_features}; delete the "
                    "statistics file to recompute it")
        self.stats = stats

    @property
    def num_features(self) -> int:
        """Bins per frame: window_samples // 2 + 1 for the spectrogram (161 at 16 kHz, 20 ms),
        n_mels for log-mel."""
        if self.cfg.kind == "spectrogram":
            return self.window_samples // 2 + 1
        return self.cfg.n_mels

    def num_frames(self, num_samples: int) -> int:
        """Frames computed from `num_samples` samples: 1 + num_samples // hop_samples."""
        return 1 + int(num_samples) // self.hop_samples

    def frames_for_duration(self, duration_s: float) -> int:
        """Frames of an utterance of `duration_s` seconds (from a manifest, before loading)."""
        return self.num_frames(int(round(duration_s * self.sample_rate)))

    def raw(self, waveform: torch.Tensor,
            power_warp: Optional[PowerWarp] = None) -> torch.Tensor:
        """Unnormalized log features (frames, num_features) of a (samples,) waveform.

        `power_warp` (augmentation, e.g. VTLP) maps the linear-frequency power spectrum
        (bins, frames) to one of the same shape before the mel filterbank and the log."""
        waveform = torch.as_tensor(waveform, dtype=torch.float32)
        if waveform.dim() != 1:
            raise ValueError(f"expected a mono waveform of shape (samples,), got "
                             f"{tuple(waveform.shape)}")
        if waveform.numel() == 0:
            # One silent sample gives the single frame num_frames(0) promises.
            waveform = torch.zeros(1)
        with torch.no_grad():
            if power_warp is None:
                power = self._transform(waveform)  # (num_features, frames)
            elif self.cfg.kind == "spectrogram":
                power = power_warp(self._transform(waveform))
            else:
                # MelSpectrogram is its spectrogram followed by its mel filterbank.
                power = self._transform.mel_scale(power_warp(self._transform.spectrogram(waveform)))
            if self.cfg.kind == "spectrogram":
                # DeepSpeech2: log(1 + |X|^2) compresses the dynamic range, 0 for silence.
                features = torch.log1p(power)
            else:
                features = torch.log(power + MEL_LOG_OFFSET)
        return features.transpose(0, 1).contiguous()

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """Apply the configured normalization to (frames, num_features) features."""
        if self.cfg.normalize == "utterance":
            mean = features.mean(dim=0, keepdim=True)
            std = features.std(dim=0, unbiased=False, keepdim=True)
            return (features - mean) / std.clamp_min(STD_FLOOR)
        if self.cfg.normalize == "global":
            assert self.stats is not None  # checked in __init__
            return (features - self.stats.mean) / self.stats.std.clamp_min(STD_FLOOR)
        return features

    def __call__(self, waveform: torch.Tensor,
                 power_warp: Optional[PowerWarp] = None,
                 ) -> torch.Tensor:
        """Normalized features (frames, num_features) float32 of a (samples,) waveform;
        `power_warp` as in `raw`."""
        return self.normalize(self.raw(waveform, power_warp))


def compute_feature_stats(utterances: Sequence[Utterance], cfg: FeatureConfig,
                          max_utterances: int = 0) -> FeatureStats:
    """Per-bin mean and standard deviation of the raw features of `utterances`, or of
    `max_utterances` of them evenly spaced through the list (0: all).

    Sums are accumulated in float64. Files that fail to load raise `AudioError` (check the
    manifest first).
    """
    if 0 < max_utterances < len(utterances):
        picks = np.linspace(0, len(utterances) - 1, max_utterances).round().astype(int)
        utterances = [utterances[i] for i in picks]
    extractor = FeatureExtractor(_unnormalized(cfg))
    total = torch.zeros(extractor.num_features, dtype=torch.float64)
    total_sq = torch.zeros(extractor.num_features, dtype=torch.float64)
    frames = 0
    for utterance in utterances:
        waveform = torch.from_numpy(load_audio(utterance.audio_filepath, cfg.sample_rate,
                                               *utterance.span))
        features = extractor.raw(waveform).double()
        total += features.sum(dim=0)
        total_sq += (features * features).sum(dim=0)
        frames += features.shape[0]
    if frames == 0:
        raise FeatureStatsError("cannot compute feature statistics of an empty utterance list")
    mean = total / frames
    variance = (total_sq / frames - mean * mean).clamp_min(0.0)
    return FeatureStats(cfg.kind, extractor.num_features, frames, mean.float(),
                        variance.sqrt().float())


def stats_path(manifest_path: str | Path, cfg: FeatureConfig) -> Path:
    """Where the statistics of a training manifest live: next to it, named after the features
    (`train.jsonl` -> `train.stats.spectrogram.json`, `train.stats.logmel80.json`)."""
    manifest_path = Path(manifest_path)
    name = cfg.kind if cfg.kind == "spectrogram" else f"{cfg.kind}{cfg.n_mels}"
    return manifest_path.with_name(f"{manifest_path.stem}.stats.{name}.json")


def load_or_compute_stats(manifest_path: str | Path, utterances: list[Utterance],
                          cfg: FeatureConfig) -> FeatureStats:
    """The cached statistics next to `manifest_path`, computed from `utterances` (at most
    cfg.stats_max_utterances of them) and saved the first time; delete the file to recompute
    after the manifest changes."""
    path = stats_path(manifest_path, cfg)
    if path.is_file():
        return FeatureStats.load(path)
    stats = compute_feature_stats(utterances, cfg, cfg.stats_max_utterances)
    stats.save(path)
    return stats


def _unnormalized(cfg: FeatureConfig) -> FeatureConfig:
    """A copy of `cfg` (a dataclass or an OmegaConf node) without normalization."""
    return FeatureConfig(kind=cfg.kind, sample_rate=cfg.sample_rate, window_ms=cfg.window_ms,
                         hop_ms=cfg.hop_ms, n_mels=cfg.n_mels, normalize="none")

