"""Finishing engine output: resampling, silence trimming, peak normalization."""

from __future__ import annotations

import numpy as np
import pytest

from speechprune.corpus.postprocess import finish_audio, normalize_peak, trim_silence

RATE = 16000


def tone_with_silence(lead_s: float, tone_s: float, tail_s: float, rate: int = RATE) -> np.ndarray:
    time = np.arange(int(tone_s * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * time)
    return np.concatenate([np.zeros(int(lead_s * rate)), tone, np.zeros(int(tail_s * rate))]
                          ).astype(np.float32)


def test_long_silence_is_trimmed_to_the_kept_margin():
    trimmed = trim_silence(tone_with_silence(1.0, 0.5, 2.0), RATE, threshold_db=40, keep_s=0.15)
    assert len(trimmed) / RATE == pytest.approx(0.5 + 2 * 0.15, abs=0.02)


def test_short_silence_is_kept_whole():
    audio = tone_with_silence(0.05, 0.5, 0.05)
    assert len(trim_silence(audio, RATE, threshold_db=40, keep_s=0.15)) == len(audio)


def test_the_peak_is_normalized():
    assert np.max(np.abs(normalize_peak(tone_with_silence(0, 0.1, 0), 0.9))) == pytest.approx(0.9)


def test_engine_output_is_resampled_to_the_corpus_rate():
    audio = tone_with_silence(0.0, 1.0, 0.0, rate=22050)
    finished = finish_audio(audio, 22050, RATE, threshold_db=40, keep_s=0.15, peak=0.9)
    assert finished.dtype == np.float32
    assert len(finished) == pytest.approx(RATE, abs=20)
