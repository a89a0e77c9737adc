"""Specification of the channel and speaker augmentations of speechprune/data/augment.py: the
telephone channel (narrow band, G.711 companding) and vocal tract length perturbation."""

import numpy as np
import pytest

from speechprune.config import AugmentConfig
from speechprune.data.augment import (
    TELEPHONE_CODECS,
    Augmenter,
    augmentation_rng,
    telephone_band,
    telephone_channel,
    validate_augment_config,
)

RATE = 16000


def broadband(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """White noise at a speech-like level: energy in every band up to the Nyquist frequency."""
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)


def band_gain_db(clean: np.ndarray, processed: np.ndarray, low_hz: float, high_hz: float):
    """Energy of `processed` over energy of `clean` in [low_hz, high_hz), in dB (FFT)."""
    frequencies = np.fft.rfftfreq(clean.size, 1.0 / RATE)
    band = (frequencies >= low_hz) & (frequencies < high_hz)
    before = np.sum(np.abs(np.fft.rfft(clean))[band] ** 2)
    after = np.sum(np.abs(np.fft.rfft(processed))[band] ** 2)
    return 10 * np.log10(after / before)


@pytest.mark.parametrize("codec", sorted(TELEPHONE_CODECS))
def test_telephone_channel_keeps_only_the_narrow_band_at_the_same_length(codec):
    """Seen to fail: the channel not resampled to 8 kHz (band-pass at 16 kHz up to 7 kHz);
    the band-pass left out (only the resampling)."""
    clean = broadband()
    phone = telephone_channel(clean, RATE, 300.0, 3400.0, codec)
    assert phone.shape == clean.shape and phone.dtype == np.float32
    assert band_gain_db(clean, phone, 4000, 8000) < -40  # nothing survives above 4 kHz
    assert band_gain_db(clean, phone, 3700, 4000) < -15
    assert band_gain_db(clean, phone, 0, 200) < -15
    assert abs(band_gain_db(clean, phone, 600, 3000)) < 1  # the speech band passes


@pytest.mark.parametrize("codec", sorted(TELEPHONE_CODECS))
def test_companding_leaves_at_most_256_levels_at_the_telephone_rate(codec):
    """Seen to fail: mu-law quantize returning the waveform itself (no quantization); A-law
    codes expanded with the mu-law curve."""
    narrow = np.clip(telephone_band(broadband(), RATE, 300.0, 3400.0), -1, 1)
    quantize, expand = TELEPHONE_CODECS[codec]
    codes = quantize(narrow)
    assert codes.min() >= 0 and codes.max() <= 255
    decoded = expand(codes)
    assert 64 < np.unique(decoded).size <= 256
    # Companding keeps the waveform: small error, finer steps for quiet samples.
    assert np.max(np.abs(decoded - narrow)) < 0.01
    quiet = np.abs(narrow) < 0.01
    assert np.max(np.abs(decoded - narrow)[quiet]) < 0.001


def test_telephone_augmentation_is_reproducible_and_differs_across_utterances():
    """Seen to fail: the band edges drawn from np.random instead of the utterance's generator
    (two runs with the same (seed, epoch, index) differ)."""
    cfg = AugmentConfig(telephone=True, telephone_prob=1.0)
    augmenter = Augmenter(cfg, RATE)
    clean = broadband()
    first, log = augmenter.waveform(clean, augmentation_rng(3, 1, 7))
    again, _ = augmenter.waveform(clean, augmentation_rng(3, 1, 7))
    other, _ = augmenter.waveform(clean, augmentation_rng(3, 1, 8))
    assert log.telephone in TELEPHONE_CODECS
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert band_gain_db(clean, first, 4000, 8000) < -40


def test_telephone_probability_sets_the_share_of_phone_utterances():
    """Seen to fail: `rng.random() < telephone_prob` written as `>` (70% instead of 30%)."""
    augmenter = Augmenter(AugmentConfig(telephone=True, telephone_prob=0.3), RATE)
    clean = broadband(0.2)
    logs = [augmenter.waveform(clean, augmentation_rng(0, 0, i))[1] for i in range(200)]
    share = np.mean([log.telephone != "" for log in logs])
    assert 0.2 < share < 0.4
    assert {log.telephone for log in logs} == {"", "mulaw", "alaw"}


@pytest.mark.parametrize("key, value", [
    ("telephone_prob", 1.5), ("telephone_prob", -0.1), ("telephone_codecs", ["gsm"]),
    ("telephone_codecs", []), ("telephone_low_hz_min", 400.0), ("telephone_high_hz_max", 4100.0),
])
def test_bad_telephone_settings_name_their_key(key, value):
    """Seen to fail: telephone_prob left out of the probability check (no error for 1.5)."""
    with pytest.raises(ValueError, match=f"data.augment.{key}"):
        validate_augment_config(AugmentConfig(**{key: value}))
