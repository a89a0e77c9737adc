"""Specification of the channel and speaker augmentations of speechprune/data/augment.py: the
telephone channel (narrow band, G.711 companding) and vocal tract length perturbation."""

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from training_helpers import TINY_MODEL, corpus_overrides, run_cli

from speechprune.config import AugmentConfig, FeatureConfig
from speechprune.data.augment import (
    TELEPHONE_CODECS,
    Augmenter,
    augmentation_rng,
    spec_augment,
    telephone_band,
    telephone_channel,
    validate_augment_config,
    vtlp_warp,
)
from speechprune.data.features import FeatureExtractor
from speechprune.model.checkpoint import load_checkpoint

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


def sine(frequency_hz: float, seconds: float = 1.0) -> torch.Tensor:
    time_s = np.arange(int(seconds * RATE)) / RATE
    return torch.tensor(0.3 * np.sin(2 * np.pi * frequency_hz * time_s), dtype=torch.float32)


def peak_bin(features: torch.Tensor) -> int:
    return int(features.mean(dim=0).argmax())


def vtlp_features(kind: str, waveform: torch.Tensor, alpha: float) -> torch.Tensor:
    """Features of `waveform` through the augmenter's VTLP warp drawn with alpha fixed."""
    augmenter = Augmenter(AugmentConfig(vtlp=True, vtlp_min=alpha, vtlp_max=alpha), RATE)
    _, log = augmenter.waveform(waveform.numpy(), augmentation_rng(0, 0, 0))
    assert log.vtlp_alpha == alpha
    extractor = FeatureExtractor(FeatureConfig(kind=kind, normalize="none"))
    return extractor.raw(waveform, augmenter.power_warp(log))


@pytest.mark.parametrize("kind", ["spectrogram", "logmel"])
@pytest.mark.parametrize("alpha", [0.9, 1.1])
@pytest.mark.parametrize("tone_hz", [700.0, 1500.0, 3000.0])
def test_vtlp_moves_a_spectral_peak_by_alpha(kind, alpha, tone_hz):
    """A tone at f warped by alpha peaks where a tone at alpha * f peaks, within one bin, on
    the linear (spectrogram) and the mel (logmel) axis alike.

    Seen to fail: the forward warp used as the source frequency (the peak moved to f / alpha);
    power_warp ignored for logmel in FeatureExtractor.raw (the peak stayed at f)."""
    extractor = FeatureExtractor(FeatureConfig(kind=kind, normalize="none"))
    warped = vtlp_features(kind, sine(tone_hz), alpha)
    expected = peak_bin(extractor.raw(sine(alpha * tone_hz)))
    assert peak_bin(extractor.raw(sine(tone_hz))) != expected  # the move is measurable
    assert abs(peak_bin(warped) - expected) <= 1
    assert warped.shape == extractor.raw(sine(tone_hz)).shape


def test_vtlp_brings_the_nyquist_frequency_onto_itself():
    """Above the boundary the second segment ends at Nyquist: no bin reads beyond the spectrum.

    Seen to fail: the upper segment's slope inverted (bins near Nyquist read from below 6 kHz)."""
    power = torch.arange(161, dtype=torch.float64).unsqueeze(-1).repeat(1, 3)
    for alpha in (0.9, 1.1):
        warped = vtlp_warp(power, alpha, RATE, 4800.0)
        assert warped[-1, 0] == pytest.approx(160.0)
        assert warped[0, 0] == 0.0
        # Monotonic: the warp never folds the frequency axis.
        assert torch.all(warped[1:, 0] >= warped[:-1, 0])
        # The knee: f -> alpha f holds up to the boundary (at 50 Hz per bin).
        assert warped[40, 0] == pytest.approx(40 / alpha)


@pytest.mark.parametrize("kind", ["spectrogram", "logmel"])
def test_vtlp_with_alpha_one_is_the_identity(kind):
    """Seen to fail: the interpolation weight offset by half a bin in vtlp_warp."""
    waveform = torch.from_numpy(broadband(1.0))
    extractor = FeatureExtractor(FeatureConfig(kind=kind))
    assert torch.equal(vtlp_features(kind, waveform, 1.0), extractor.raw(waveform))
    # The warp itself maps every bin onto itself at alpha = 1.
    power = extractor.raw(waveform).exp().transpose(0, 1)
    assert torch.equal(vtlp_warp(power, 1.0, RATE, 4800.0), power)


@pytest.mark.parametrize("key, value", [
    ("vtlp_min", 0.0), ("vtlp_min", -0.5), ("vtlp_min", 1.2), ("vtlp_boundary_hz", 0.0),
])
def test_bad_vtlp_settings_name_their_key(key, value):
    """Seen to fail: the vtlp_min <= vtlp_max pair left out of the range check."""
    with pytest.raises(ValueError, match=f"data.augment.{key}"):
        validate_augment_config(AugmentConfig(**{key: value}))


def test_vtlp_boundary_above_nyquist_is_an_error_at_start_up():
    """Seen to fail: the Nyquist check in Augmenter.__init__ removed (no error at 8 kHz)."""
    with pytest.raises(ValueError, match="data.augment.vtlp_boundary_hz"):
        Augmenter(AugmentConfig(vtlp=True, vtlp_boundary_hz=8000.0), RATE)


# The generator's state after speed, reverberation, noise and SpecAugment of utterance
# (2, 0, 5) below, as the chain left it before the telephone channel and VTLP existed: the
# same number of draws means the same choices, so the output is the same bit for bit (checked
# against that code on the same inputs: waveforms and both feature kinds equal).
STATE_BEFORE_CHANNEL_AUGMENTATIONS = 232760259888236385580948689054014855002


def test_switched_off_telephone_and_vtlp_leave_the_chain_unchanged():
    """With both off, the other augmentations draw exactly what they drew before these two
    existed, and give the same waveform, features and generator state whatever the settings of
    the two switched-off ones.

    Seen to fail: the telephone draw made before testing the switch
    (`rng.random() < telephone_prob and cfg.telephone`); the VTLP factor drawn with the switch
    off."""
    others = dict(speed_perturb=True, reverb=True, reverb_prob=1.0, noise=True, noise_prob=1.0,
                  spec_augment=True)
    plain = Augmenter(AugmentConfig(**others), RATE)
    primed = Augmenter(AugmentConfig(**others, telephone_prob=1.0, vtlp_min=1.1, vtlp_max=1.1),
                       RATE)
    clean = broadband(1.0)
    results = []
    for augmenter in (plain, primed):
        rng = augmentation_rng(2, 0, 5)
        waveform, log = augmenter.waveform(clean, rng)
        assert augmenter.power_warp(log) is None and log.telephone == ""
        features = FeatureExtractor(FeatureConfig())(torch.from_numpy(waveform))
        results.append((waveform, spec_augment(features, augmenter.cfg, rng),
                        rng.bit_generator.state))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])
    assert results[0][2] == results[1][2]
    assert results[0][2]["state"]["state"] == STATE_BEFORE_CHANNEL_AUGMENTATIONS


@pytest.mark.slow
def test_train_command_runs_with_telephone_and_vtlp_switched_on(micro_corpus, tmp_path):
    """One real training step from the command line with both switched on (every utterance
    through the telephone channel): the switches are accepted, the run finishes, and the
    channel changes what the model learns from.

    Seen to fail: the telephone branch of Augmenter.waveform skipped (weights equal to the
    plain run's)."""
    common = TINY_MODEL + corpus_overrides(micro_corpus) + ["trainer.epochs=1",
                                                            "trainer.max_steps=1"]
    plain = run_cli("train", *common, f"hydra.run.dir={tmp_path / 'plain'}")
    assert plain.returncode == 0, plain.stderr[-3000:]
    phone = run_cli("train", *common, "data.augment.telephone=true",
                    "data.augment.telephone_prob=1.0", "data.augment.vtlp=true",
                    f"hydra.run.dir={tmp_path / 'phone'}")
    assert phone.returncode == 0, phone.stderr[-3000:]
    resolved = OmegaConf.load(tmp_path / "phone/config.yaml")
    assert resolved.data.augment.telephone and resolved.data.augment.vtlp
    reference = load_checkpoint(tmp_path / "plain/checkpoints/last.pt")["model"]
    augmented = load_checkpoint(tmp_path / "phone/checkpoints/last.pt")["model"]
    assert any(not torch.equal(reference[name], augmented[name]) for name in reference)
