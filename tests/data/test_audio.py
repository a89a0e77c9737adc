"""Loading audio: always float32 mono at the requested rate; clear errors for bad files."""

from __future__ import annotations

import pickle
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
    with pytest.raises(AudioError, match=r"gone\.wav: audio file not found") as error:
        read(tmp_path / "gone.wav")
    assert error.value.kind == "missing"


@pytest.mark.parametrize("read", [audio_duration, load_audio])
def test_non_audio_file_is_unreadable(tmp_path, read):
    (tmp_path / "notes.wav").write_text("these are not samples")
    with pytest.raises(AudioError, match=r"notes\.wav: unreadable") as error:
        read(tmp_path / "notes.wav")
    assert error.value.kind == "unreadable"


def test_truncated_flac_fails_to_load_with_the_file_named(tmp_path):
    path = Path(tmp_path / "cut.flac")
    sf.write(str(path), tone(2.0, 16000), 16000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AudioError, match=r"cut\.flac: unreadable or truncated"):
        load_audio(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_samples_are_a_named_error_not_silence(tmp_path, bad):
    """A float WAV can store NaN and infinity; fed to the model they poison the features (and a
    training step), so loading refuses them, naming the file.

    Seen to fail: the non-finite check in load_audio removed (no AudioError raised)."""
    samples = tone(0.5, 16000)
    samples[100:103] = bad
    sf.write(str(tmp_path / "nan.wav"), samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: the audio holds 3 non-finite") as error:
        load_audio(tmp_path / "nan.wav")
    assert error.value.kind == "non_finite"


def test_a_file_of_zero_samples_is_empty(tmp_path):
    """Seen to fail: the zero-samples check in load_audio removed (an empty array came back)."""
    sf.write(str(tmp_path / "empty.wav"), np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav: the audio holds no samples") as error:
        load_audio(tmp_path / "empty.wav")
    assert error.value.kind == "empty"


def test_the_kind_of_an_audio_error_survives_pickling(tmp_path):
    """DataLoader workers send exceptions to the main process by pickling them.

    Seen to fail: AudioError.__reduce__ removed (TypeError: missing argument 'kind')."""
    with pytest.raises(AudioError) as error:
        load_audio(tmp_path / "gone.wav")
    copy = pickle.loads(pickle.dumps(error.value))
    assert (str(copy), copy.kind) == (str(error.value), "missing")


def test_a_span_reads_exactly_its_frames_of_the_file(tmp_path):
    """Seen to fail: the offset taken as samples instead of seconds (round(offset_s): the span
    began at sample 0)."""
    original = np.random.default_rng(1).uniform(-0.5, 0.5, 16000).astype(np.float32)
    sf.write(str(tmp_path / "long.wav"), original, 16000, subtype="FLOAT")
    span = load_audio(tmp_path / "long.wav", 16000, offset_s=0.25, duration_s=0.5)
    np.testing.assert_array_equal(span, original[4000:12000])


def test_a_stereo_44k1_span_is_downmixed_and_resampled_like_the_whole_file(tmp_path):
    """Seen to fail: the span's frames computed at the target rate (16 kHz) instead of the
    file's (the 44.1 kHz span started 0.36 s in, not 1 s)."""
    rate = 44100
    ramp = np.linspace(-0.5, 0.5, 2 * rate, dtype=np.float32)
    sf.write(str(tmp_path / "s.wav"), np.stack([ramp, np.zeros_like(ramp)], axis=1), rate,
             subtype="FLOAT")
    span = load_audio(tmp_path / "s.wav", 16000, offset_s=1.0, duration_s=0.5)
    cut = ramp[rate:rate + rate // 2]
    sf.write(str(tmp_path / "cut.wav"), np.stack([cut, np.zeros_like(cut)], axis=1), rate,
             subtype="FLOAT")
    np.testing.assert_array_equal(span, load_audio(tmp_path / "cut.wav", 16000))


def test_a_span_past_the_end_of_its_file_is_an_audio_error(tmp_path):
    """Seen to fail: the end check removed (no AudioError: the 0.2 s up to the file's end came
    back as the span)."""
    sf.write(str(tmp_path / "a.wav"), tone(1.0, 16000), 16000)
    with pytest.raises(AudioError, match=r"a.wav: the span 0.800-1.300 s ends past the end of "
                                         r"the 1.000 s file") as raised:
        load_audio(tmp_path / "a.wav", 16000, offset_s=0.8, duration_s=0.5)
    assert raised.value.kind == "beyond_end"
    # Within the tolerance the span is read to the file's end.
    assert len(load_audio(tmp_path / "a.wav", 16000, offset_s=0.8, duration_s=0.21)) == 3200
