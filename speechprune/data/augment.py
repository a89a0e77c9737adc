"""On-the-fly augmentation of training utterances: speed perturbation, simulated room
reverberation, additive coloured or babble noise, a telephone channel (on the waveform), vocal
tract length perturbation (on the power spectrum) and SpecAugment (on the features).

Every random choice comes from an explicit generator, `augmentation_rng(seed, epoch, index)`,
never from global random state: a resumed run, a DataLoader worker or another rank of a
distributed run draws exactly the same augmentation for the same utterance and epoch.

Waveforms are float32 numpy arrays of shape (samples,); features are tensors of shape
(frames, num_features).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

import numpy as np
import scipy.fft
import torch
import torchaudio.functional
from scipy.signal import butter, fftconvolve, sosfilt

from speechprune.config import AugmentConfig
from speechprune.data.audio import resample
from speechprune.data.features import PowerWarp

# Power-spectrum slope of each noise colour: power ~ 1 / f^exponent.
NOISE_COLOUR_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# An RT60 is the time for the reverberant energy to fall by 60 dB.
RT60_DECAY_DB = 60.0
# The telephone network's sample rate (G.711).
TELEPHONE_RATE = 8000
# G.711 quantizes every sample to 8 bits.
CODEC_LEVELS = 256
# The A-law compression parameter of G.711.
A_LAW_A = 87.6
# Order of the Butterworth band-pass that sets the telephone band edges (24 dB/octave skirts).
TELEPHONE_FILTER_ORDER = 4

# Asks the dataset for `count` waveforms of other utterances (for babble); may return fewer.
BabbleSource = Callable[[int, np.random.Generator], list[np.ndarray]]


def augmentation_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of all random choices for utterance `index` in `epoch` of a run seeded
    with `seed` (all three non-negative integers)."""
    if min(seed, epoch, index) < 0:
        raise ValueError(f"seed, epoch and index must be >= 0, got {(seed, epoch, index)}")
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index]))


def validate_augment_config(cfg: AugmentConfig) -> None:
    """Raise a ValueError naming the first inconsistent data.augment setting."""
    for name in ("noise_prob", "babble_prob", "reverb_prob", "telephone_prob"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ValueError(f"data.augment.{name} must be in [0, 1], got {getattr(cfg, name)}")
    for low, high in (("speed_min", "speed_max"), ("snr_min_db", "snr_max_db"),
                      ("rt60_min_s", "rt60_max_s"),
                      ("telephone_low_hz_min", "telephone_low_hz_max"),
                      ("telephone_high_hz_min", "telephone_high_hz_max"),
                      ("vtlp_min", "vtlp_max")):
        if getattr(cfg, low) > getattr(cfg, high):
            raise ValueError(f"data.augment.{low} must not exceed data.augment.{high}")
    if cfg.speed_min <= 0 or cfg.speed_step <= 0:
        raise ValueError("data.augment.speed_min and speed_step must be positive")
    if cfg.rt60_min_s <= 0:
        raise ValueError("data.augment.rt60_min_s must be positive")
    unknown = [c for c in cfg.noise_colours if c not in NOISE_COLOUR_EXPONENTS]
    if unknown or not cfg.noise_colours:
        raise ValueError(f"data.augment.noise_colours must be a non-empty list of "
                         f"{sorted(NOISE_COLOUR_EXPONENTS)}, got {list(cfg.noise_colours)}")
    if cfg.vtlp_min <= 0:
        raise ValueError(f"data.augment.vtlp_min must be positive (a warp factor), "
                         f"got {cfg.vtlp_min}")
    if cfg.vtlp_boundary_hz <= 0:
        raise ValueError("data.augment.vtlp_boundary_hz must be positive")
    if cfg.telephone_low_hz_min <= 0:
        raise ValueError("data.augment.telephone_low_hz_min must be positive")
    if cfg.telephone_high_hz_max >= TELEPHONE_RATE / 2:
        raise ValueError(f"data.augment.telephone_high_hz_max must be below the "
                         f"{TELEPHONE_RATE // 2} Hz Nyquist frequency of the telephone rate")
    if cfg.telephone_low_hz_max >= cfg.telephone_high_hz_min:
        raise ValueError("data.augment.telephone_low_hz_max must be below "
                         "data.augment.telephone_high_hz_min")
    unknown = [c for c in cfg.telephone_codecs if c not in TELEPHONE_CODECS]
    if unknown or not cfg.telephone_codecs:
        raise ValueError(f"data.augment.telephone_codecs must be a non-empty list of "
                         f"{sorted(TELEPHONE_CODECS)}, got {list(cfg.telephone_codecs)}")
    if cfg.time_mask_max_fraction < 0 or cfg.freq_mask_width < 0:
        raise ValueError("data.augment.freq_mask_width and time_mask_max_fraction must be >= 0")


# ---------------------------------------------------------------------------------------------
# Waveform augmentations
# ---------------------------------------------------------------------------------------------


def speed_perturb(waveform: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play `waveform` `factor` times faster (pitch moves too, as in Kaldi's speed
    perturbation): resampled from sample_rate * factor to sample_rate Hz, so the result has
    about samples / factor samples (rounded)."""
    source_rate = int(round(sample_rate * factor))
    if source_rate == sample_rate:
        return waveform.copy()
    return resample(waveform, source_rate, sample_rate)


def coloured_noise(num_samples: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of unit RMS, spectrally shaped: white (flat), pink (power ~ 1/f) or brown
    (power ~ 1/f^2). Shape (num_samples,) float32."""
    exponent = NOISE_COLOUR_EXPONENTS[colour]
    if exponent == 0 or num_samples < 2:
        return _unit_rms(rng.standard_normal(num_samples))
    # Shaped at a length with small prime factors (an FFT of a length with a large prime
    # factor is 30x slower), then cut.
    length = scipy.fft.next_fast_len(num_samples, real=True)
    spectrum = scipy.fft.rfft(rng.standard_normal(length))
    frequencies = scipy.fft.rfftfreq(length)
    gain = np.zeros_like(frequencies)
    # Amplitude ~ f^(-exponent / 2); the DC bin is dropped so the noise has zero mean.
    gain[1:] = frequencies[1:] ** (-exponent / 2.0)
    return _unit_rms(scipy.fft.irfft(spectrum * gain, n=length)[:num_samples])


def babble_noise(voices: list[np.ndarray], num_samples: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Several other utterances summed into one unit-RMS babble track of `num_samples` samples.

    Each voice is looped to cover the length and starts at a random offset, at equal level."""
    babble = np.zeros(num_samples)
    for voice in voices:
        if voice.size == 0 or not np.any(voice):
            continue
        repeats = -(-num_samples // voice.size) + 1
        looped = np.tile(voice, repeats)
        offset = int(rng.integers(0, voice.size))
        babble += _unit_rms(looped[offset:offset + num_samples])
    return _unit_rms(babble)


def add_noise(waveform: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`waveform` plus `noise` scaled to a signal-to-noise ratio of `snr_db` decibels (both of
    shape (samples,)); the length is unchanged. Silence stays silence (its SNR is undefined)."""
    signal_power = float(np.mean(np.square(waveform, dtype=np.float64))) if waveform.size else 0.0
    noise_power = float(np.mean(np.square(noise, dtype=np.float64))) if noise.size else 0.0
    if signal_power == 0.0 or noise_power == 0.0:
        return waveform.copy()
    scale = np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (waveform + scale * noise).astype(np.float32)


def synthetic_room_impulse_response(rt60_s: float, sample_rate: int,
                                    rng: np.random.Generator) -> np.ndarray:
    """A room impulse response of `rt60_s` seconds: a direct-path impulse followed by Gaussian
    noise under an exponential envelope that decays by 60 dB over rt60_s. Shape
    (round(rt60_s * sample_rate),), unit energy."""
    length = max(1, int(round(rt60_s * sample_rate)))
    time_s = np.arange(length) / sample_rate
    # Amplitude envelope 10^(-3 t / rt60): energy falls 60 dB at t = rt60.
    envelope = 10.0 ** (-(RT60_DECAY_DB / 20.0) * time_s / rt60_s)
    response = rng.standard_normal(length) * envelope
    response[0] = 1.0  # the direct path
    return (response / np.sqrt(np.sum(response ** 2))).astype(np.float32)


def reverberate(waveform: np.ndarray, impulse_response: np.ndarray) -> np.ndarray:
    """`waveform` convolved with `impulse_response`, cut to the input length (the reverberant
    tail past the end is dropped) and scaled back to the input's RMS level."""
    if waveform.size == 0:
        return waveform.copy()
    wet = fftconvolve(waveform, impulse_response, mode="full")[: waveform.size]
    dry_rms = np.sqrt(np.mean(np.square(waveform, dtype=np.float64)))
    wet_rms = np.sqrt(np.mean(np.square(wet, dtype=np.float64)))
    if wet_rms > 0:
        wet = wet * (dry_rms / wet_rms)
    return wet.astype(np.float32)


def mu_law_quantize(waveform: np.ndarray) -> np.ndarray:
    """8-bit mu-law (mu = 255) codes 0..255 of a waveform in [-1, 1]."""
    codes = torchaudio.functional.mu_law_encoding(torch.from_numpy(waveform), CODEC_LEVELS)
    return codes.numpy()


def mu_law_expand(codes: np.ndarray) -> np.ndarray:
    """The waveform in [-1, 1] that 8-bit mu-law codes stand for (float32)."""
    decoded = torchaudio.functional.mu_law_decoding(torch.from_numpy(codes), CODEC_LEVELS)
    return decoded.numpy().astype(np.float32)


def a_law_quantize(waveform: np.ndarray) -> np.ndarray:
    """8-bit A-law (A = 87.6) codes 0..255 of a waveform in [-1, 1]: the continuous A-law curve
    (no library ships it; torchaudio has mu-law only), quantized to 256 uniform steps."""
    magnitude = np.abs(waveform.astype(np.float64))
    log_a = 1.0 + np.log(A_LAW_A)
    small = magnitude < 1.0 / A_LAW_A
    compressed = np.where(small, A_LAW_A * magnitude,
                          1.0 + np.log(np.maximum(magnitude, 1.0 / A_LAW_A) * A_LAW_A)) / log_a
    signed = np.sign(waveform) * compressed
    return np.clip(np.round((signed + 1.0) / 2.0 * (CODEC_LEVELS - 1)), 0, CODEC_LEVELS - 1
                   ).astype(np.int64)


def a_law_expand(codes: np.ndarray) -> np.ndarray:
    """The waveform in [-1, 1] that 8-bit A-law codes stand for (float32)."""
    signed = codes.astype(np.float64) / (CODEC_LEVELS - 1) * 2.0 - 1.0
    compressed = np.abs(signed) * (1.0 + np.log(A_LAW_A))
    magnitude = np.where(compressed < 1.0, compressed / A_LAW_A,
                         np.exp(compressed - 1.0) / A_LAW_A)
    return (np.sign(signed) * magnitude).astype(np.float32)


# Codec name -> (quantize to codes 0..255, expand codes back to [-1, 1]).
TELEPHONE_CODECS = {"mulaw": (mu_law_quantize, mu_law_expand),
                    "alaw": (a_law_quantize, a_law_expand)}


def telephone_band(waveform: np.ndarray, sample_rate: int, low_hz: float,
                   high_hz: float) -> np.ndarray:
    """`waveform` (samples,) at `sample_rate` Hz moved to the 8 kHz telephone rate and
    band-passed to [low_hz, high_hz]; the (about samples * 8000 / sample_rate,) result is at
    8 kHz. The resampler's anti-aliasing filter removes everything above 4 kHz."""
    narrow = resample(waveform, sample_rate, TELEPHONE_RATE)
    sos = butter(TELEPHONE_FILTER_ORDER, [low_hz, high_hz], btype="bandpass",
                 fs=TELEPHONE_RATE, output="sos")
    return sosfilt(sos, narrow).astype(np.float32)


def telephone_channel(waveform: np.ndarray, sample_rate: int, low_hz: float, high_hz: float,
                      codec: str) -> np.ndarray:
    """`waveform` (samples,) as heard through a telephone line: the narrow band of
    `telephone_band`, 8-bit G.711 companding (`codec` in TELEPHONE_CODECS), and back at
    `sample_rate` Hz with the input's length. Samples beyond [-1, 1] clip, as in a codec."""
    if waveform.size == 0:
        return waveform.copy()
    quantize, expand = TELEPHONE_CODECS[codec]
    narrow = np.clip(telephone_band(waveform, sample_rate, low_hz, high_hz), -1.0, 1.0)
    decoded = expand(quantize(narrow))
    wide = resample(decoded, TELEPHONE_RATE, sample_rate)
    # The two resamplings may round the length; pad or cut to the input's.
    if wide.size < waveform.size:
        wide = np.pad(wide, (0, waveform.size - wide.size))
    return wide[:waveform.size].astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Spectrum augmentation
# ---------------------------------------------------------------------------------------------


def vtlp_source_frequencies(frequencies_hz: torch.Tensor, alpha: float, nyquist_hz: float,
                            boundary_hz: float) -> torch.Tensor:
    """For each output frequency g, the input frequency f that Jaitly & Hinton's (2013) VTLP warp
    sends to g (the inverse of the warp).

    The warp is f -> alpha * f up to f = boundary_hz * min(alpha, 1) / alpha, then the straight
    line that brings the Nyquist frequency onto itself; both pieces are inverted here.
    """
    knee_out = boundary_hz * min(alpha, 1.0)  # where the two segments meet, after the warp
    knee_in = knee_out / alpha
    upper = nyquist_hz - (nyquist_hz - frequencies_hz) * (nyquist_hz - knee_in) / (
        nyquist_hz - knee_out)
    return torch.where(frequencies_hz <= knee_out, frequencies_hz / alpha, upper)


def vtlp_warp(power: torch.Tensor, alpha: float, sample_rate: int,
              boundary_hz: float) -> torch.Tensor:
    """The power spectrum (..., bins, frames) with its frequency axis warped by VTLP factor
    `alpha`: energy at f moves to alpha * f below the boundary (a spectral peak at 1 kHz moves to
    1.1 kHz for alpha = 1.1). Bins are linear in frequency from 0 to sample_rate / 2; every
    output bin is linearly interpolated between the two input bins around its source frequency.
    """
    bins = power.shape[-2]
    nyquist_hz = sample_rate / 2.0
    frequencies = torch.linspace(0.0, nyquist_hz, bins, dtype=torch.float64)
    source_bin = vtlp_source_frequencies(frequencies, alpha, nyquist_hz, boundary_hz) * (
        (bins - 1) / nyquist_hz)
    source_bin = source_bin.clamp(0.0, bins - 1)
    below = source_bin.floor().long().clamp(max=bins - 2)
    weight = (source_bin - below).to(power.dtype).unsqueeze(-1)
    return power[..., below, :] * (1.0 - weight) + power[..., below + 1, :] * weight


# ---------------------------------------------------------------------------------------------
# Feature augmentation
# ---------------------------------------------------------------------------------------------


def spec_augment(features: torch.Tensor, cfg: AugmentConfig,
                 rng: np.random.Generator) -> torch.Tensor:
    """SpecAugment frequency and time masks on (frames, num_features) features.

    Each of `cfg.freq_masks` masks zeroes 0..freq_mask_width adjacent bins, each of
    `cfg.time_masks` masks 0..time_mask_max_fraction * frames adjacent frames. Zero is the mean
    of normalized features. Returns a masked copy of the same shape.
    """
    masked = features.clone()
    frames, bins = masked.shape
    for _ in range(cfg.freq_masks):
        width = int(rng.integers(0, min(cfg.freq_mask_width, bins) + 1))
        start = int(rng.integers(0, bins - width + 1))
        masked[:, start:start + width] = 0.0
    max_time_width = int(cfg.time_mask_max_fraction * frames)
    for _ in range(cfg.time_masks):
        width = int(rng.integers(0, max_time_width + 1))
        start = int(rng.integers(0, frames - width + 1))
        masked[start:start + width, :] = 0.0
    return masked


# ---------------------------------------------------------------------------------------------
# The whole chain
# ---------------------------------------------------------------------------------------------


@dataclass
class AugmentationLog:
    """What was applied to one utterance (for tests, debugging and TensorBoard)."""

    speed: float = 1.0
    rt60_s: float = 0.0  # 0: no reverberation
    noise: str = ""  # "", a colour, or "babble"
    snr_db: float = float("inf")
    telephone: str = ""  # "", or the codec of the telephone channel
    vtlp_alpha: float = 1.0  # 1: no vocal tract length perturbation


class Augmenter:
    """Applies the switched-on augmentations of an AugmentConfig in a fixed order:
    speed -> reverberation -> noise -> telephone on the waveform, VTLP on the power spectrum
    (`power_warp`, which the feature extractor applies), then SpecAugment on the features."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int) -> None:
        validate_augment_config(cfg)
        if cfg.vtlp and cfg.vtlp_boundary_hz >= sample_rate / 2:
            raise ValueError(f"data.augment.vtlp_boundary_hz must be below the Nyquist frequency "
                             f"({sample_rate / 2:g} Hz), got {cfg.vtlp_boundary_hz}")
        self.cfg = cfg
        self.sample_rate = sample_rate

    def waveform(self, waveform: np.ndarray, rng: np.random.Generator,
                 babble_source: Optional[BabbleSource] = None,
                 ) -> tuple[np.ndarray, AugmentationLog]:
        """The augmented (samples',) waveform and what was done; samples' differs from the input
        only under speed perturbation."""
        cfg = self.cfg
        log = AugmentationLog()
        if cfg.speed_perturb:
            steps = int(round((cfg.speed_max - cfg.speed_min) / cfg.speed_step))
            log.speed = round(cfg.speed_min + cfg.speed_step * int(rng.integers(0, steps + 1)), 6)
            waveform = speed_perturb(waveform, log.speed, self.sample_rate)
        if cfg.reverb and rng.random() < cfg.reverb_prob:
            log.rt60_s = float(rng.uniform(cfg.rt60_min_s, cfg.rt60_max_s))
            response = synthetic_room_impulse_response(log.rt60_s, self.sample_rate, rng)
            waveform = reverberate(waveform, response)
        if cfg.noise and rng.random() < cfg.noise_prob:
            log.snr_db = float(rng.uniform(cfg.snr_min_db, cfg.snr_max_db))
            noise = None
            if babble_source is not None and rng.random() < cfg.babble_prob:
                voices = babble_source(cfg.babble_speakers, rng)
                if voices:
                    noise = babble_noise(voices, waveform.size, rng)
                    log.noise = "babble"
            if noise is None:
                colours = list(cfg.noise_colours)
                log.noise = colours[int(rng.integers(0, len(colours)))]
                noise = coloured_noise(waveform.size, log.noise, rng)
            waveform = add_noise(waveform, noise, log.snr_db)
        # After room and noise: a phone's microphone picks up the reverberant, noisy room, and
        # the line then band-limits and the codec quantizes all of it together.
        if cfg.telephone and rng.random() < cfg.telephone_prob:
            low_hz = float(rng.uniform(cfg.telephone_low_hz_min, cfg.telephone_low_hz_max))
            high_hz = float(rng.uniform(cfg.telephone_high_hz_min, cfg.telephone_high_hz_max))
            codecs = list(cfg.telephone_codecs)
            log.telephone = codecs[int(rng.integers(0, len(codecs)))]
            waveform = telephone_channel(waveform, self.sample_rate, low_hz, high_hz,
                                         log.telephone)
        # Drawn here, with the waveform's choices, so that one generator still serves the whole
        # chain; the warp itself is applied by the feature extractor (see power_warp).
        if cfg.vtlp:
            log.vtlp_alpha = float(rng.uniform(cfg.vtlp_min, cfg.vtlp_max))
        return waveform, log

    def power_warp(self, log: AugmentationLog) -> Optional[PowerWarp]:
        """The VTLP warp of the power spectrum that `waveform` drew for this utterance (pass it
        to FeatureExtractor), or None for none.

        Warping the power spectrum, before the mel filterbank and the log, is the paper's
        definition and serves both feature kinds with one code path; it costs one gather of the
        (bins, frames) spectrum, about what interpolating the feature rows would cost, and rows
        of normalized features cannot be interpolated correctly (with global statistics each
        row has its own mean and scale, on a mel or a linear axis depending on the kind).
        """
        if log.vtlp_alpha == 1.0:
            return None
        return partial(vtlp_warp, alpha=log.vtlp_alpha, sample_rate=self.sample_rate,
                       boundary_hz=self.cfg.vtlp_boundary_hz)

    def features(self, features: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """SpecAugment (when switched on) of (frames, num_features) features."""
        if self.cfg.spec_augment:
            return spec_augment(features, self.cfg, rng)
        return features


def _unit_rms(signal: np.ndarray) -> np.ndarray:
    rms = np.sqrt(np.mean(np.square(signal))) if signal.size else 0.0
    if rms == 0:
        return signal.astype(np.float32)
    return (signal / rms).astype(np.float32)
