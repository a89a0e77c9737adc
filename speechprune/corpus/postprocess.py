"""Engine output -> corpus audio: resample to the corpus rate, trim silence, normalize the peak."""

from __future__ import annotations

import numpy as np

from speechprune.data.audio import resample

# Frame length of the silence detector (seconds): short enough to keep word onsets.
SILENCE_FRAME_S = 0.01


def trim_silence(samples: np.ndarray, sample_rate: int, threshold_db: float,
                 keep_s: float) -> np.ndarray:
    """Cut leading/trailing stretches quieter than `threshold_db` below the loudest 10 ms frame,
    keeping `keep_s` seconds of them at either end. samples: (samples,) float32."""
    frame = max(1, int(SILENCE_FRAME_S * sample_rate))
    frames = len(samples) // frame
    if frames == 0:
        return samples
    energy = np.sqrt(np.mean(samples[: frames * frame].reshape(frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(energy > energy.max() * 10 ** (-threshold_db / 20))
    if loud.size == 0:
        return samples
    keep = int(keep_s * sample_rate)
    start = max(0, loud[0] * frame - keep)
    end = min(len(samples), (loud[-1] + 1) * frame + keep)
    return samples[start:end]


def normalize_peak(samples: np.ndarray, peak: float) -> np.ndarray:
    """Scale so that the largest absolute sample is `peak` (silence is left as it is)."""
    largest = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples if largest == 0.0 else samples * (peak / largest)


def finish_audio(samples: np.ndarray, sample_rate: int, target_rate: int, threshold_db: float,
                 keep_s: float, peak: float) -> np.ndarray:
    """Mono float32 (samples,) at `sample_rate` -> float32 (samples,) at `target_rate`,
    trimmed and peak-normalized."""
    samples = np.asarray(samples, dtype=np.float32)
    if sample_rate != target_rate:
        samples = resample(samples, sample_rate, target_rate)
    samples = trim_silence(samples, target_rate, threshold_db, keep_s)
    return normalize_peak(samples, peak).astype(np.float32)
