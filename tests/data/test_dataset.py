"""Specification of speechprune/data/dataset.py: real manifests with good and bad utterances,
skip-and-count versus error naming the line, collation and a DataLoader with a worker."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speech_helpers import RATE, write_faulty_copies, write_speech

from speechprune.config import AugmentConfig, FeatureConfig, TextConfig
from speechprune.data.batching import BucketBatchSampler
from speechprune.data.dataset import (
    BadUtteranceError,
    Batch,
    Example,
    Skipped,
    SpeechDataset,
    collate,
    make_dataloader,
)
from speechprune.data.features import FeatureExtractor
from speechprune.data.manifest import Utterance, read_jsonl, write_jsonl
from speechprune.data.text import Alphabet

TEXT = TextConfig()
ALPHABET = Alphabet.from_config(TEXT)
SPOKEN = ["Turn on the 2 lamps", "go north", "Hello, world!", "call mom now please"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A manifest of four spoken utterances (lines 1-4) and three bad ones: a missing file
    (line 5), a corrupt file (line 6), a 0.05 s click with a long transcript (line 7)."""
    folder = tmp_path_factory.mktemp("corpus")
    good = [write_speech(folder / f"good{i}.wav", text) for i, text in enumerate(SPOKEN)]
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    sf.write(str(folder / "short.wav"), np.full(800, 0.1, dtype=np.float32), RATE)
    bad = [Utterance(str(folder / "missing.wav"), 1.0, "gone"),
           Utterance(str(folder / "corrupt.wav"), 1.0, "broken"),
           Utterance(str(folder / "short.wav"), 0.05, "a transcript much too long for audio")]
    manifest = folder / "train.jsonl"
    write_jsonl(good + bad, manifest)
    return read_jsonl(manifest)


@pytest.fixture(scope="module")
def converted_and_faulty(corpus, tmp_path_factory):
    """The first spoken utterance four ways, lines 1-4 of faulty.jsonl: stereo (the same
    speech in both channels), at 8 kHz, with NaN samples (a float WAV), and with zero samples."""
    folder = tmp_path_factory.mktemp("faulty")
    copies = write_faulty_copies(Path(corpus[0].audio_filepath), folder)
    manifest = folder / "faulty.jsonl"
    write_jsonl([Utterance(str(copies[kind]), corpus[0].duration, corpus[0].text)
                 for kind in ("stereo", "8k", "non_finite", "empty")], manifest)
    return read_jsonl(manifest)


def dataset(utterances, **overrides):
    return SpeechDataset(utterances, ALPHABET, TEXT, FeatureExtractor(FeatureConfig()),
                         **overrides)


def test_good_utterance_gives_features_and_encoded_normalized_transcript(corpus):
    example = dataset(corpus)[0]
    assert isinstance(example, Example)
    assert example.text == "turn on the two lamps"
    assert example.labels.tolist() == ALPHABET.encode("turn on the two lamps")
    samples = sf.info(corpus[0].audio_filepath).frames
    assert example.features.shape == (1 + samples // 160, 161)


def test_bad_utterances_are_skipped_with_their_reason_and_counted(corpus):
    data = dataset(corpus, bad_input="skip")
    items = [data[i] for i in range(len(data))]
    assert [isinstance(item, Skipped) for item in items] == [False] * 4 + [True] * 3
    reasons = [item.reason for item in items[4:]]
    assert reasons[0].startswith(corpus[4].source) and "not found" in reasons[0]
    assert reasons[1].startswith(corpus[5].source) and "unreadable" in reasons[1]
    assert reasons[2].startswith(corpus[6].source) and "too long" in reasons[2]
    assert [item.kind for item in items[4:]] == ["missing", "unreadable", "too_long_transcript"]
    batch = collate(items)
    assert batch.size == 4 and batch.skipped == 3 and len(batch.skip_reasons) == 3
    assert batch.skip_kinds == ["missing", "unreadable", "too_long_transcript"]


@pytest.mark.parametrize("line", [5, 6, 7])
def test_bad_input_error_raises_naming_the_manifest_line(corpus, line):
    data = dataset(corpus, bad_input="error")
    with pytest.raises(BadUtteranceError, match=rf"train\.jsonl:{line}: .*data\.bad_input=skip"):
        data[line - 1]


def test_stereo_and_8k_audio_are_converted_nan_and_empty_audio_skipped_by_kind(
        corpus, converted_and_faulty):
    """Seen to fail: the non-finite check in load_audio removed (the NaN file became an
    Example of NaN features); the zero-samples check removed (the empty file was skipped as
    too_long_transcript); skip_kinds left out of collate (an empty list)."""
    data = dataset(converted_and_faulty, bad_input="skip")
    stereo, resampled, poisoned, empty = (data[i] for i in range(4))
    mono = dataset(corpus)[0]
    # Both channels hold the same speech, so the downmix is the mono file exactly.
    assert isinstance(stereo, Example) and torch.equal(stereo.features, mono.features)
    assert isinstance(resampled, Example) and resampled.text == mono.text
    assert abs(resampled.features.shape[0] - mono.features.shape[0]) <= 1  # resampled to 16 kHz
    assert isinstance(poisoned, Skipped) and poisoned.kind == "non_finite"
    assert poisoned.reason.startswith(f"{converted_and_faulty[2].source}: ")
    assert "non-finite samples" in poisoned.reason
    assert isinstance(empty, Skipped) and empty.kind == "empty"
    assert empty.reason.startswith(f"{converted_and_faulty[3].source}: ")
    assert "no samples" in empty.reason
    batch = collate([stereo, resampled, poisoned, empty])
    assert batch.size == 2 and batch.skip_kinds == ["non_finite", "empty"]


def test_nan_audio_under_bad_input_error_names_the_manifest_line(converted_and_faulty):
    """Seen to fail: the non-finite check in load_audio removed (no error raised)."""
    data = dataset(converted_and_faulty, bad_input="error")
    with pytest.raises(BadUtteranceError, match=r"faulty\.jsonl:3: .*non_finite\.wav: the audio "
                                                r"holds \d+ non-finite samples.*bad_input=skip"):
        data[2]


def test_time_stride_makes_a_transcript_too_long_for_ctc(corpus):
    # "hello world" needs 12 CTC frames ("ll" twice counts a blank); a stride of 60 leaves fewer.
    assert isinstance(dataset(corpus, time_stride=2)[2], Example)
    assert isinstance(dataset(corpus, time_stride=60)[2], Skipped)


def test_collate_pads_features_and_targets_with_zeros(corpus):
    data = dataset(corpus)
    examples = [data[i] for i in range(4)]
    batch = collate(examples)
    longest = max(e.features.shape[0] for e in examples)
    assert batch.features.shape == (4, longest, 161) and batch.features.dtype == torch.float32
    assert batch.feature_lengths.tolist() == [e.features.shape[0] for e in examples]
    assert batch.target_lengths.tolist() == [e.labels.numel() for e in examples]
    assert batch.targets.dtype == torch.int64 and batch.feature_lengths.dtype == torch.int64
    assert batch.indices.tolist() == [0, 1, 2, 3]
    assert batch.texts == [e.text for e in examples]
    for row, example in enumerate(examples):
        frames, labels = example.features.shape[0], example.labels.numel()
        assert torch.equal(batch.features[row, :frames], example.features)
        assert (batch.features[row, frames:] == 0).all()
        assert torch.equal(batch.targets[row, :labels], example.labels)
        assert (batch.targets[row, labels:] == 0).all()
    expected = 1 - sum(batch.feature_lengths.tolist()) / (4 * longest)
    assert batch.padding_fraction == pytest.approx(expected)
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and torch.equal(moved.features, batch.features)


def test_a_batch_of_only_skipped_utterances_is_empty_but_counted(corpus):
    data = dataset(corpus)
    batch = collate([data[4], data[5]])
    assert batch.size == 0 and batch.skipped == 2 and batch.features.shape[0] == 0


def test_training_augmentation_is_reproducible_per_epoch(corpus):
    augment = AugmentConfig(spec_augment=True, speed_perturb=True, noise=True, noise_prob=1.0,
                            babble_prob=0.5, reverb=True, reverb_prob=0.5)
    data = dataset(corpus[:4], augment_cfg=augment, seed=5)
    data.set_epoch(1)
    first = data[0].features
    again = dataset(corpus[:4], augment_cfg=augment, seed=5)
    again.set_epoch(1)
    assert torch.equal(again[0].features, first)
    again.set_epoch(2)
    assert not torch.equal(again[0].features, first)
    clean = dataset(corpus[:4])[0].features
    assert not torch.equal(clean, first)


def test_dataloader_with_a_worker_and_the_bucket_sampler_yields_every_batch(corpus):
    data = dataset(corpus, bad_input="skip")
    sampler = BucketBatchSampler(data.frame_lengths(), max_frames_per_batch=800,
                                 max_batch_size=3, seed=0)
    loader = make_dataloader(data, sampler, num_workers=1)
    batches = list(loader)
    assert len(batches) == len(sampler.batches(0))
    assert sum(b.size for b in batches) == 4 and sum(b.skipped for b in batches) == 3
    seen = sorted(i for b in batches for i in b.indices.tolist())
    assert seen == [0, 1, 2, 3]


def test_frame_lengths_come_from_durations_or_the_header_when_missing(corpus):
    from dataclasses import replace

    data = dataset([replace(corpus[0], duration=float("nan")), corpus[1], corpus[4]])
    lengths = data.frame_lengths()
    assert lengths[0] == 1 + sf.info(corpus[0].audio_filepath).frames // 160
    assert lengths[1] == data.features.frames_for_duration(corpus[1].duration)
    assert lengths[2] == data.features.frames_for_duration(1.0)  # missing file: manifest says 1 s


def test_unknown_bad_input_policy_names_the_key(corpus):
    with pytest.raises(ValueError, match="data.bad_input"):
        dataset(corpus, bad_input="ignore")


def test_a_span_of_a_longer_recording_gives_the_features_of_its_slice(corpus, tmp_path):
    """Two spoken utterances in one file: the second, as a span, featurizes exactly like the
    file of its own; a span past the file's end is skipped as beyond_end naming its line.
    Seen to fail: _example reading utterance.audio_filepath without its span (the features of
    the whole recording came back)."""
    first, second = (sf.read(corpus[i].audio_filepath, dtype="float32")[0] for i in (0, 1))
    sf.write(str(tmp_path / "both.wav"), np.concatenate([first, second]), RATE)
    offset = len(first) / RATE
    manifest = tmp_path / "spans.jsonl"
    write_jsonl([Utterance(str(tmp_path / "both.wav"), corpus[1].duration, corpus[1].text,
                           offset=offset),
                 Utterance(str(tmp_path / "both.wav"), 1.0, corpus[1].text,
                           offset=offset + corpus[1].duration)], manifest)
    data = dataset(read_jsonl(manifest))
    span, beyond = data[0], data[1]
    assert torch.equal(span.features, dataset(corpus)[1].features)
    assert isinstance(beyond, Skipped) and beyond.kind == "beyond_end"
    assert beyond.reason.startswith(f"{manifest}:2: ") and "ends past the end" in beyond.reason


@pytest.mark.parametrize("kind", ["spectrogram", "logmel"])
def test_vtlp_warps_the_training_features_by_the_factor_each_utterance_drew(corpus, kind):
    """With data.augment.vtlp the dataset's features are the extractor's output under the warp
    the augmenter drew for that utterance and epoch: not the plain features, and equal to
    extracting the same waveform with that warp. Seen to fail: the dataset calling the extractor
    without the augmenter's power_warp (the training features unwarped)."""
    from speechprune.data.augment import Augmenter, augmentation_rng
    from speechprune.data.audio import load_audio

    features_cfg = FeatureConfig(kind=kind)
    augment = AugmentConfig(vtlp=True, vtlp_min=0.85, vtlp_max=0.9)
    data = SpeechDataset(corpus[:4], ALPHABET, TEXT, FeatureExtractor(features_cfg),
                         augment_cfg=augment, seed=5)
    data.set_epoch(1)
    warped = data[0].features
    plain = SpeechDataset(corpus[:4], ALPHABET, TEXT, FeatureExtractor(features_cfg))[0].features
    assert warped.shape == plain.shape and not torch.equal(warped, plain)
    augmenter = Augmenter(augment, RATE)
    waveform = load_audio(corpus[0].audio_filepath, RATE)
    waveform, log = augmenter.waveform(waveform, augmentation_rng(5, 1, 0), lambda count, r: [])
    assert 0.85 <= log.vtlp_alpha <= 0.9
    expected = FeatureExtractor(features_cfg)(torch.from_numpy(waveform),
                                              augmenter.power_warp(log))
    torch.testing.assert_close(warped, expected, rtol=0, atol=0)
