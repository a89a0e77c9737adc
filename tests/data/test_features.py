"""Specification of speechprune/data/features.py: shapes, frame counts, normalization and the
global statistics file, on real audio written to disk."""


import pytest
import torch

from speech_helpers import RATE, write_speech

from speechprune.config import FeatureConfig
from speechprune.data.audio import load_audio
from speechprune.data.features import (
    FeatureExtractor,
    FeatureStats,
    FeatureStatsError,
    compute_feature_stats,
    load_or_compute_stats,
    stats_path,
)



@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    texts = ["turn left at the second light", "seven three nine", "stop"]
    return [write_speech(folder / f"u{i}.wav", t) for i, t in enumerate(texts)]


@pytest.mark.parametrize("kind, bins", [("spectrogram", 161), ("logmel", 40)])
def test_features_have_documented_shape_and_frame_count(speech, kind, bins):
    extractor = FeatureExtractor(FeatureConfig(kind=kind, n_mels=40))
    assert extractor.num_features == bins
    for utterance in speech:
        waveform = torch.from_numpy(load_audio(utterance.audio_filepath))
        features = extractor(waveform)
        # 10 ms hop at 16 kHz = 160 samples; frames centred on multiples of the hop.
        assert features.shape == (1 + waveform.numel() // 160, bins)
        assert features.shape[0] == extractor.num_frames(waveform.numel())
        assert features.dtype == torch.float32
        assert torch.isfinite(features).all()


def test_frame_count_formula_holds_for_edge_lengths():
    extractor = FeatureExtractor(FeatureConfig(normalize="none"))
    for samples in [0, 1, 159, 160, 161, 320, 16000, 16001]:
        features = extractor(torch.randn(samples))
        assert features.shape == (extractor.num_frames(samples), 161)
    assert extractor.frames_for_duration(1.0) == 101


def test_spectrogram_is_log1p_of_the_power_spectrum_of_a_20ms_hann_window():
    tone = torch.sin(2 * torch.pi * 1000 * torch.arange(RATE) / RATE)
    features = FeatureExtractor(FeatureConfig(normalize="none")).raw(tone)
    middle = features[50]
    # A 1 kHz tone falls in bin 1000 / (16000 / 320) = 20 of the 50 Hz-wide bins.
    assert int(middle.argmax()) == 20
    frame = tone[50 * 160 - 160: 50 * 160 + 160] * torch.hann_window(320)
    expected = torch.log1p(torch.fft.rfft(frame).abs() ** 2)
    assert torch.allclose(middle, expected, rtol=1e-3, atol=1e-3)


def test_utterance_normalization_gives_zero_mean_unit_variance_per_bin(speech):
    extractor = FeatureExtractor(FeatureConfig(normalize="utterance"))
    features = extractor(torch.from_numpy(load_audio(speech[0].audio_filepath)))
    assert torch.allclose(features.mean(dim=0), torch.zeros(161), atol=1e-4)
    assert torch.allclose(features.std(dim=0, unbiased=False), torch.ones(161), atol=1e-3)


def test_global_stats_normalize_the_training_set_to_zero_mean_unit_variance(speech, tmp_path):
    cfg = FeatureConfig(kind="logmel", n_mels=40, normalize="global")
    stats = compute_feature_stats(speech, cfg)
    assert stats.frames == sum(
        FeatureExtractor(cfg, stats).num_frames(len(load_audio(u.audio_filepath)))
        for u in speech)
    extractor = FeatureExtractor(cfg, stats)
    pooled = torch.cat([extractor(torch.from_numpy(load_audio(u.audio_filepath)))
                        for u in speech])
    assert torch.allclose(pooled.mean(dim=0), torch.zeros(40), atol=1e-3)
    assert torch.allclose(pooled.std(dim=0, unbiased=False), torch.ones(40), atol=1e-3)


def test_global_stats_are_saved_next_to_the_manifest_and_reloaded(speech, tmp_path):
    cfg = FeatureConfig(normalize="global")
    manifest = tmp_path / "train.jsonl"
    stats = load_or_compute_stats(manifest, speech, cfg)
    path = stats_path(manifest, cfg)
    assert path == tmp_path / "train.stats.spectrogram.json" and path.is_file()
    reloaded = FeatureStats.load(path)
    assert torch.equal(reloaded.mean, stats.mean) and torch.equal(reloaded.std, stats.std)
    # The second call reads the file instead of recomputing (an empty list could not be).
    assert torch.equal(load_or_compute_stats(manifest, [], cfg).mean, stats.mean)


def test_global_normalization_without_or_with_mismatched_stats_is_a_clear_error(speech):
    with pytest.raises(FeatureStatsError, match="normalize=global needs"):
        FeatureExtractor(FeatureConfig(normalize="global"))
    logmel_stats = compute_feature_stats(speech[:1], FeatureConfig(kind="logmel", n_mels=40))
    with pytest.raises(FeatureStatsError, match="delete the statistics file"):
        FeatureExtractor(FeatureConfig(normalize="global"), logmel_stats)


def test_unknown_kind_or_normalization_names_the_config_key():
    with pytest.raises(ValueError, match="data.features.kind"):
        FeatureExtractor(FeatureConfig(kind="mfcc"))
    with pytest.raises(ValueError, match="data.features.normalize"):
        FeatureExtractor(FeatureConfig(normalize="batch"))


def test_stats_can_be_estimated_from_an_evenly_spaced_subset(speech):
    cfg = FeatureConfig(normalize="none")
    subset = compute_feature_stats(speech, cfg, max_utterances=2)
    # The first and the last utterance are the two evenly spaced picks.
    assert torch.allclose(subset.mean, compute_feature_stats([speech[0], speech[2]], cfg).mean)


def test_corrupt_stats_file_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "train.stats.spectrogram.json"
    path.write_text("{not json")
    with pytest.raises(FeatureStatsError, match="delete it to recompute"):
        FeatureStats.load(path)


def test_global_stats_of_a_span_cover_only_its_samples(speech):
    """An utterance that is a span of its file (a segment of a longer recording) adds only the
    span's frames to the training-set statistics. Seen to fail: the whole file read for a span
    (load_audio without the span)."""
    from dataclasses import replace

    cfg = FeatureConfig(kind="logmel", n_mels=40, normalize="global")
    span = replace(speech[0], offset=0.2, duration=0.5)
    stats = compute_feature_stats([span], cfg)
    samples = load_audio(speech[0].audio_filepath)[int(0.2 * RATE): int(0.7 * RATE)]
    assert stats.frames == FeatureExtractor(cfg, stats).num_frames(len(samples))
    assert stats.frames < FeatureExtractor(cfg, stats).num_frames(
        len(load_audio(speech[0].audio_filepath)))
