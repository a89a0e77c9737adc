"""The training loop over manifests holding bad audio: each kind skipped and counted (in the log
and metrics.json) while the rest of the epoch trains, or an error naming the manifest line."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_helpers import RATE, write_faulty_copies
from training_helpers import TINY_MODEL, compose_train

from speechprune.data.dataset import BadUtteranceError
from speechprune.data.manifest import read_jsonl, write_jsonl
from speechprune.model.run_dir import RunDirectory
from speechprune.training.loop import train


def manifests(folder: Path, train: list, test: list) -> list[str]:
    """Overrides naming train.jsonl and test.jsonl (also the dev set), written into `folder`."""
    write_jsonl(train, folder / "train.jsonl")
    write_jsonl(test, folder / "test.jsonl")
    return [f"data.train_manifest={folder / 'train.jsonl'}",
            f"data.dev_manifest={folder / 'test.jsonl'}",
            f"data.test_manifest={folder / 'test.jsonl'}"]


def test_bad_audio_is_skipped_and_counted_by_kind_while_stereo_and_8k_audio_train(
        micro_corpus, tmp_path, caplog):
    """Corrupt, empty, NaN and too-long-transcript utterances are each counted under their own
    kind; stereo and 8 kHz copies are converted and trained on (their audio seconds count).

    Seen to fail: the non-finite check in load_audio removed ("non_finite" missing from
    skipped_by_reason); the zero-samples check removed (the empty file counted as
    too_long_transcript); the skipped_by_reason update in train_epoch removed (only the test
    set's skip counted)."""
    good = read_jsonl(micro_corpus / "train.jsonl")[:6]
    copies = write_faulty_copies(Path(good[0].audio_filepath), tmp_path)
    sf.write(str(tmp_path / "click.wav"), np.full(800, 0.1, dtype=np.float32), RATE)
    faulty = [replace(good[0], audio_filepath=str(copies[kind]))
              for kind in ("stereo", "8k", "unreadable", "empty", "non_finite")]
    too_long = replace(good[1], audio_filepath=str(tmp_path / "click.wav"), duration=0.05)
    held_out = read_jsonl(micro_corpus / "test.jsonl")[:2] + [faulty[-1]]
    overrides = manifests(tmp_path, good + faulty + [too_long], held_out)
    cfg = compose_train(TINY_MODEL + overrides + ["trainer.epochs=1"])
    with caplog.at_level(logging.WARNING, logger="speechprune.training.loop"):
        train(cfg, RunDirectory(tmp_path / "run"))

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # The NaN file is skipped twice: once in training, once in the test set.
    assert metrics["skipped_by_reason"] == {"empty": 1, "non_finite": 2,
                                            "too_long_transcript": 1, "unreadable": 1}
    assert metrics["skipped_utterances"] == 5
    trained = good + faulty[:2]  # the stereo and 8 kHz copies are trained on
    assert metrics["train_audio_seconds"] == pytest.approx(sum(u.duration for u in trained))
    assert ("epoch 1: skipped 4 bad utterances (empty: 1, non_finite: 1, "
            f"too_long_transcript: 1, unreadable: 1); first {tmp_path / 'train.jsonl'}:"
            ) in caplog.text


def test_nan_audio_under_bad_input_error_stops_training_naming_the_manifest_line(
        micro_corpus, tmp_path):
    """Seen to fail: the non-finite check in load_audio removed (training ran to the end)."""
    good = read_jsonl(micro_corpus / "train.jsonl")[:3]
    copies = write_faulty_copies(Path(good[0].audio_filepath), tmp_path)
    poisoned = replace(good[0], audio_filepath=str(copies["non_finite"]))
    overrides = manifests(tmp_path, good + [poisoned], good[:1])
    cfg = compose_train(TINY_MODEL + overrides + ["trainer.epochs=1", "data.bad_input=error"])
    with pytest.raises(BadUtteranceError, match=r"train\.jsonl:4: .*non_finite\.wav: the audio "
                                                r"holds \d+ non-finite samples.*bad_input=skip"):
        train(cfg, RunDirectory(tmp_path / "run"))


def test_manifest_lines_dropped_at_load_are_counted_in_metrics(micro_corpus, tmp_path):
    """Lines left out when the manifests are read (audio missing, a file that is not audio, a
    recording shorter than data.min_duration_s) count in skipped_by_reason beside the training
    skips, in a CSV manifest whose durations come from the file headers.

    Seen to fail: without the load_skips term in Trainer.final_metrics (skipped_by_reason was
    empty, skipped_utterances 0); with every unreadable line counted under the first one's
    kind ("missing": 2)."""
    good = read_jsonl(micro_corpus / "train.jsonl")[:6]
    (tmp_path / "notes.wav").write_text("not audio")
    sf.write(str(tmp_path / "click.wav"), np.full(800, 0.1, dtype=np.float32), RATE)
    overrides = manifests(tmp_path, good, read_jsonl(micro_corpus / "test.jsonl")[:2])
    rows = [(u.audio_filepath, u.text) for u in good] + [
        (str(tmp_path / "gone.wav"), "a"), (str(tmp_path / "notes.wav"), "b"),
        (str(tmp_path / "click.wav"), "c")]
    (tmp_path / "train.csv").write_text("".join(f"{audio},{text}\n" for audio, text in rows))
    overrides[0] = f"data.train_manifest={tmp_path / 'train.csv'}"
    cfg = compose_train(TINY_MODEL + overrides + ["trainer.epochs=1", "data.min_duration_s=0.2"])
    train(cfg, RunDirectory(tmp_path / "run"))

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["skipped_by_reason"] == {"missing": 1, "outside_duration_range": 1,
                                            "unreadable": 1}
    assert metrics["skipped_utterances"] == 3
    assert metrics["train_audio_seconds"] == pytest.approx(sum(u.duration for u in good), rel=1e-3)
