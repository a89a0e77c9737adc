"""Training on a Lhotse manifest of segments: the layout of the icefall recipes (long
recordings, a supervision per sentence), read as it is."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from training_helpers import TINY_MODEL, compose_train, corpus_overrides

from speechprune.data.dataset import evaluation_dataset
from speechprune.data.manifest import Utterance, read_jsonl
from speechprune.model.run_dir import RunDirectory
from speechprune.training.loop import Trainer, train

RATE = 16000
GAP_S = 0.3  # silence between the sentences of a recording
PER_RECORDING = 3


def write_lines(path: Path, entries: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(entry) + "\n" for entry in entries)
    return path


def segment(utterances: list[Utterance], folder: Path, part: str) -> Path:
    """The utterances joined into recordings of PER_RECORDING sentences, GAP_S apart, with a
    Lhotse RecordingSet and SupervisionSet (`segmented_{recordings,supervisions}_<part>`)."""
    recordings, supervisions = [], []
    gap = np.zeros(round(GAP_S * RATE), np.float32)
    for first in range(0, len(utterances), PER_RECORDING):
        rid = f"{part}-{first}"
        pieces, start = [gap], len(gap)
        for index, utterance in enumerate(utterances[first:first + PER_RECORDING]):
            samples, rate = sf.read(utterance.audio_filepath, dtype="float32")
            assert rate == RATE
            supervisions.append({"id": f"{rid}-{index}", "recording_id": rid,
                                 "start": start / RATE, "duration": len(samples) / RATE,
                                 "channel": 0, "text": utterance.text})
            pieces += [samples, gap]
            start += len(samples) + len(gap)
        sf.write(str(folder / f"{rid}.flac"), np.concatenate(pieces), RATE, subtype="PCM_16")
        recordings.append({"id": rid, "sampling_rate": RATE, "num_samples": start,
                           "duration": start / RATE, "channel_ids": [0],
                           "sources": [{"type": "file", "channels": [0],
                                        "source": f"{rid}.flac"}]})
    write_lines(folder / f"segmented_recordings_{part}.jsonl.gz", recordings)
    return write_lines(folder / f"segmented_supervisions_{part}.jsonl.gz", supervisions)


def test_a_short_run_trains_on_the_segments_of_a_lhotse_manifest(micro_corpus, tmp_path):
    """Every supervision is one training utterance, each featurized exactly as the sentence's
    own file, and a run trains and evaluates to finite losses with nothing skipped.
    Seen to fail: SpeechDataset._example reading the whole recording for a span (the dev
    features were those of three sentences and the gaps)."""
    train_utterances = read_jsonl(micro_corpus / "train.jsonl")
    dev_utterances = read_jsonl(micro_corpus / "dev.jsonl")
    overrides = TINY_MODEL + corpus_overrides(micro_corpus) + [
        f"data.train_manifest={segment(train_utterances, tmp_path, 'train')}",
        f"data.dev_manifest={segment(dev_utterances, tmp_path, 'dev')}"]
    cfg = compose_train(overrides + ["trainer.epochs=1"])

    data = Trainer(cfg, RunDirectory(tmp_path / "setup")).data
    assert len(data.train_set) == len(train_utterances)
    assert all(u.offset is not None for u in data.train_set.utterances)
    assert data.train_durations == pytest.approx([u.duration for u in train_utterances], abs=1e-4)
    whole_files = evaluation_dataset(dev_utterances, cfg.data, data.alphabet, data.features,
                                     data.dev_set.time_stride)
    for index in range(len(dev_utterances)):
        assert torch.equal(data.dev_set[index].features, whole_files[index].features)

    metrics = train(cfg, RunDirectory(tmp_path / "run"))
    assert metrics["steps"] > 0 and metrics["skipped_utterances"] == 0
    assert math.isfinite(metrics["test_loss"]) and math.isfinite(metrics["dev_wer"])
