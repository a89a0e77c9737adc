"""Specification of speechprune/data/augment.py: every augmentation changes the signal, keeps
its length rules, and is reproducible from (seed, epoch, index) alone."""


import numpy as np
import pytest
import torch

from speech_helpers import RATE, write_speech

from speechprune.config import AugmentConfig
from speechprune.data.audio import load_audio
from speechprune.data.augment import (
    Augmenter,
    add_noise,
    augmentation_rng,
    babble_noise,
    coloured_noise,
    reverberate,
    spec_augment,
    speed_perturb,
    synthetic_room_impulse_response,
)



@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    return [load_audio(write_speech(folder / f"{i}.wav", text).audio_filepath)
            for i, text in enumerate(["open the window please", "four five six", "goodbye"])]


def snr_db(clean, noisy):
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise ** 2))


@pytest.mark.parametrize("factor", [0.9, 0.95, 1.1])
def test_speed_perturbation_changes_the_length_by_the_factor(speech, factor):
    waveform = speech[0]
    faster = speed_perturb(waveform, factor, RATE)
    assert abs(faster.size - waveform.size / factor) <= 1
    assert faster.dtype == np.float32
    # Pitch moves with speed: the dominant frequency of a tone scales by the factor.
    tone = np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)
    shifted = speed_perturb(tone, factor, RATE)
    peak_hz = np.argmax(np.abs(np.fft.rfft(shifted))) * RATE / shifted.size
    assert abs(peak_hz - 440 * factor) < 5


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
def test_added_coloured_noise_keeps_length_and_hits_the_requested_snr(speech, colour):
    rng = np.random.default_rng(0)
    noise = coloured_noise(speech[0].size, colour, rng)
    noisy = add_noise(speech[0], noise, 17.5)
    assert noisy.shape == speech[0].shape
    assert not np.allclose(noisy, speech[0])
    assert snr_db(speech[0], noisy) == pytest.approx(17.5, abs=0.01)


def test_noise_colours_have_their_spectral_slopes():
    rng = np.random.default_rng(1)
    slopes = {}
    for colour in ["white", "pink", "brown"]:
        power = np.abs(np.fft.rfft(coloured_noise(2 ** 16, colour, rng))) ** 2
        frequencies = np.fft.rfftfreq(2 ** 16)
        band = (frequencies > 0.001) & (frequencies < 0.4)
        slopes[colour] = np.polyfit(np.log(frequencies[band]), np.log(power[band]), 1)[0]
    assert slopes["white"] == pytest.approx(0, abs=0.1)
    assert slopes["pink"] == pytest.approx(-1, abs=0.1)
    assert slopes["brown"] == pytest.approx(-2, abs=0.1)


def test_babble_mixes_other_utterances_to_the_target_length(speech):
    babble = babble_noise(speech[1:], speech[0].size, np.random.default_rng(2))
    assert babble.shape == speech[0].shape
    assert np.sqrt(np.mean(babble.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    # It is made of speech: correlated with the voices, unlike independent noise.
    assert snr_db(speech[0], add_noise(speech[0], babble, 12.0)) == pytest.approx(12.0, abs=0.01)


def test_reverberation_keeps_length_and_level_and_smears_the_signal(speech):
    response = synthetic_room_impulse_response(0.5, RATE, np.random.default_rng(3))
    assert response.size == RATE // 2
    # Energy decays 60 dB over the RT60: the last 10% carries far less than the first 10%.
    tenth = response.size // 10
    assert np.sum(response[-tenth:] ** 2) < 1e-4 * np.sum(response[:tenth] ** 2)
    wet = reverberate(speech[0], response)
    assert wet.shape == speech[0].shape
    assert np.sqrt(np.mean(wet ** 2)) == pytest.approx(np.sqrt(np.mean(speech[0] ** 2)), rel=1e-3)
    assert np.corrcoef(wet, speech[0])[0, 1] < 0.9


def test_spec_augment_masks_bands_and_keeps_the_shape():
    features = torch.randn(400, 161) + 5.0
    original = features.clone()
    cfg = AugmentConfig(freq_masks=2, freq_mask_width=15, time_masks=2,
                        time_mask_max_fraction=0.05)
    masked = spec_augment(features, cfg, np.random.default_rng(4))
    assert masked.shape == features.shape
    zero_bins = int((masked == 0).all(dim=0).sum())
    zero_frames = int((masked == 0).all(dim=1).sum())
    assert 0 < zero_bins <= 2 * 15
    assert 0 < zero_frames <= 2 * int(0.05 * 400)
    assert torch.equal(features, original)  # the input is not modified in place
    assert not torch.equal(masked, features)


ALL_ON = AugmentConfig(spec_augment=True, speed_perturb=True, noise=True, noise_prob=1.0,
                       babble_prob=0.5, reverb=True, reverb_prob=1.0)


def run_augmenter(speech, seed, epoch, index):
    augmenter = Augmenter(ALL_ON, RATE)
    rng = augmentation_rng(seed, epoch, index)
    waveform, log = augmenter.waveform(speech[0], rng, lambda count, r: speech[1:1 + count])
    clean = torch.randn(300, 161, generator=torch.Generator().manual_seed(0))
    features = augmenter.features(clean, rng)
    return waveform, log, features


def test_same_seed_epoch_index_gives_identical_augmentation(speech):
    first = run_augmenter(speech, 7, 3, 11)
    np.random.seed(123)  # global random state must play no part
    torch.manual_seed(123)
    second = run_augmenter(speech, 7, 3, 11)
    assert np.array_equal(first[0], second[0])
    assert first[1] == second[1]
    assert torch.equal(first[2], second[2])


def test_another_epoch_or_index_gives_different_augmentation(speech):
    base = run_augmenter(speech, 7, 3, 11)
    for other in [run_augmenter(speech, 7, 4, 11), run_augmenter(speech, 7, 3, 12)]:
        assert other[1] != base[1] or not np.array_equal(other[0], base[0])


def test_augmenter_snr_and_speed_stay_within_the_configured_ranges(speech):
    cfg = AugmentConfig(speed_perturb=True, noise=True, noise_prob=1.0, snr_min_db=10,
                        snr_max_db=30, babble_prob=0.0)
    augmenter = Augmenter(cfg, RATE)
    for index in range(8):
        rng = augmentation_rng(0, 0, index)
        _, log = augmenter.waveform(speech[0], rng)
        assert 0.9 <= log.speed <= 1.1
        assert 10 <= log.snr_db <= 30
        assert round(log.speed * 100) == pytest.approx(log.speed * 100, abs=1e-6)
    # Measured: noise only (speed off), the SNR of the output is the one drawn, inside the range.
    augmenter = Augmenter(AugmentConfig(noise=True, noise_prob=1.0, babble_prob=0.0), RATE)
    for index in range(5):
        noisy, log = augmenter.waveform(speech[0], augmentation_rng(0, 0, index))
        measured = snr_db(speech[0], noisy)
        assert 10 - 0.01 <= measured <= 30 + 0.01
        assert measured == pytest.approx(log.snr_db, abs=0.01)


def test_babble_noise_comes_from_the_other_utterances_the_dataset_supplies(speech):
    augmenter = Augmenter(AugmentConfig(noise=True, noise_prob=1.0, babble_prob=1.0,
                                        babble_speakers=2), RATE)
    asked = []

    def voices(count, rng):
        asked.append(count)
        return speech[1:1 + count]

    noisy, log = augmenter.waveform(speech[0], augmentation_rng(0, 0, 0), voices)
    assert asked == [2] and log.noise == "babble"
    assert snr_db(speech[0], noisy) == pytest.approx(log.snr_db, abs=0.01)
    # Without voices to mix (a one-utterance dataset) it falls back to coloured noise.
    _, log = augmenter.waveform(speech[0], augmentation_rng(0, 0, 0), lambda count, rng: [])
    assert log.noise in ("white", "pink", "brown")


def test_disabled_augmentation_leaves_the_signal_alone(speech):
    augmenter = Augmenter(AugmentConfig(), RATE)
    waveform, log = augmenter.waveform(speech[0], augmentation_rng(0, 0, 0))
    assert np.array_equal(waveform, speech[0]) and log.noise == "" and log.speed == 1.0


def test_inconsistent_config_names_the_key():
    with pytest.raises(ValueError, match="data.augment.snr_min_db"):
        Augmenter(AugmentConfig(snr_min_db=40, snr_max_db=10), RATE)
    with pytest.raises(ValueError, match="data.augment.noise_colours"):
        Augmenter(AugmentConfig(noise_colours=["purple"]), RATE)
    with pytest.raises(ValueError, match=">= 0"):
        augmentation_rng(-1, 0, 0)
