"""Loading audio: always float32 mono at the requested rate; clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechprune.data.audio import AudioError, audio_duration, load_audio


def tone(duration_s: float, rate: int, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(round(duration_s * rate))) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_stereo_44k1_loads_as_mono_16k_with_the_same_duration(tmp_path):
    left = tone(1.5, 44100)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)  # (samples, channels)
    sf.write(str(tmp_path / "s.wav"), stereo, 44100)
    samples = load_audio(tmp_path / "s.wav", sample_rate=16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - 24000) <= 1
    # The channels are averaged: a 0.5 tone in one channel and silence in the other -> 0.25.
    assert np.abs(samples[1000:-1000]).max() == pytest.approx(0.25, abs=0.01)
    # Resampling keeps the 440 Hz tone at 440 Hz.
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.fft.rfftfreq(len(samples), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=2)


def test_16k_mono_flac_loads_unchanged(tmp_path):
    original = tone(0.5, 16000)
    sf.write(str(tmp_path / "a.flac"), original, 16000)
    np.testing.assert_allclose(load_audio(tmp_path / "a.flac"), original, atol=1e-4)


def test_audio_duration_reads_seconds_from_the_header(tmp_path):
    sf.write(str(tmp_path / "a.wav"), tone(0.75, 22050), 22050)
    assert audio_duration(tmp_path / "a.wav") == pytest.approx(0.75, abs=1e-4)


@pytest.mark.parametrize("read", [audio_duration, load_audio])
def test_missing_file_is_named_as_not_found(tmp_path, read):
    with pytest.raises(AudioError, match=r"gone\.wav: audio file not found"):
        read(tmp_path / "gone.wav")


@pytest.mark.parametrize("read", [audio_duration, load_audio])
def test_non_audio_file_is_unreadable(tmp_path, read):
    (tmp_path / "notes.wav").write_text("these are not samples")
    with pytest.raises(AudioError, match=r"notes\.wav: unreadable"):
        read(tmp_path / "notes.wav")


def test_truncated_flac_fails_to_load_with_the_file_named(tmp_path):
    path = Path(tmp_path / "cut.flac")
    sf.write(str(path), tone(2.0, 16000), 16000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AudioError, match=r"cut\.flac: unreadable or truncated"):
        load_audio(path)
