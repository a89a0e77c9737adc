"""Lhotse manifests (the icefall and NeMo recipes' format) read as they are: a CutSet, or a
SupervisionSet with its RecordingSet, gzipped JSON lines, checked by `data check`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechprune.config import DataCheckConfig
from speechprune.data.check import check_manifest
from speechprune.data.manifest import ManifestError, read_manifest

RATE = 16000


def write_audio(path: Path, seconds: float) -> Path:
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE)
    return path


def recording(rid: str, name: str, seconds: float) -> dict:
    return {"id": rid, "sources": [{"type": "file", "channels": [0], "source": name}],
            "sampling_rate": RATE, "num_samples": int(seconds * RATE), "duration": seconds,
            "channel_ids": [0]}


def supervision(sid: str, rid: str, seconds: float, text: str, start: float = 0.0) -> dict:
    return {"id": sid, "recording_id": rid, "start": start, "duration": seconds, "channel": 0,
            "text": text, "speaker": f"speaker-{rid}", "language": "English"}


def write_lines(path: Path, entries: list[dict]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(entry) + "\n" for entry in entries)
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    (tmp_path / "audio").mkdir()
    write_audio(tmp_path / "audio" / "a.flac", 1.0)
    write_audio(tmp_path / "audio" / "b.wav", 0.5)
    return tmp_path


def test_a_cutset_reads_as_utterances_and_passes_data_check(corpus):
    """Seen to fail: the recording's source path taken relative to the working directory
    instead of the manifest's folder."""
    cuts = [{"id": f"cut-{rid}", "start": 0.0, "duration": seconds, "channel": 0,
             "type": "MonoCut", "recording": recording(rid, f"audio/{name}", seconds),
             "supervisions": [supervision(f"sup-{rid}", rid, seconds, text)]}
            for rid, name, seconds, text in (("a", "a.flac", 1.0, "HELLO WORLD"),
                                             ("b", "b.wav", 0.5, "YES"))]
    manifest = write_lines(corpus / "tiny_cuts_train.jsonl.gz", cuts)
    utterances = read_manifest(manifest)  # .jsonl.gz: format auto -> lhotse
    assert [(u.audio_filepath, u.duration, u.text) for u in utterances] == [
        (str(corpus / "audio" / "a.flac"), 1.0, "HELLO WORLD"),
        (str(corpus / "audio" / "b.wav"), 0.5, "YES")]
    assert utterances[0].extra["speaker"] == "speaker-a"
    assert utterances[1].source == f"{manifest}:2"
    report = check_manifest(manifest, DataCheckConfig(manifest=str(manifest)))
    assert report.summary() == "2 utterances, 0 problems"


def test_a_supervision_set_reads_its_recordings_from_beside_it(corpus):
    """Seen to fail: the recordings read from the supervisions file itself (its lines have no
    sources)."""
    write_lines(corpus / "tiny_recordings_dev.jsonl.gz",
                [recording("a", "audio/a.flac", 1.0), recording("b", "audio/b.wav", 0.5)])
    manifest = write_lines(corpus / "tiny_supervisions_dev.jsonl.gz",
                           [supervision("s2", "b", 0.5, "NO"), supervision("s1", "a", 1.0, "ONE")])
    utterances = read_manifest(manifest, "lhotse")
    assert [(Path(u.audio_filepath).name, u.text) for u in utterances] == [("b.wav", "NO"),
                                                                          ("a.flac", "ONE")]
    report = check_manifest(manifest, DataCheckConfig(manifest=str(manifest)))
    assert report.summary() == "2 utterances, 0 problems"


def test_a_segment_inside_a_longer_recording_is_refused_naming_its_line(corpus):
    """speechprune reads whole files. Seen to fail: without the coverage check the segment's
    utterance took the recording's whole audio for its 0.3 s transcript."""
    write_lines(corpus / "x_recordings.jsonl.gz", [recording("a", "audio/a.flac", 1.0)])
    manifest = write_lines(corpus / "x_supervisions.jsonl.gz",
                           [supervision("s1", "a", 0.3, "PART", start=0.5)])
    with pytest.raises(ManifestError, match=r"x_supervisions.jsonl.gz:1: supervision 's1' covers "
                                            r"0.50-0.80 s of a 1.00 s recording.*cut the recordings"):
        read_manifest(manifest)


@pytest.mark.parametrize("broken, message", [
    (lambda cut: cut.pop("recording"), "needs its recording and exactly one supervision"),
    (lambda cut: cut["recording"].pop("duration"), "missing key 'duration'"),
    (lambda cut: cut["recording"]["sources"].append({"type": "url", "source": "http://x"}),
     "exactly one source of type 'file'"),
])
def test_a_broken_cut_is_named_with_its_line(corpus, broken, message):
    """Seen to fail: a missing key escaped as a KeyError traceback before _entry_errors."""
    cut = {"id": "c", "start": 0.0, "duration": 1.0, "channel": 0, "type": "MonoCut",
           "recording": recording("a", "audio/a.flac", 1.0),
           "supervisions": [supervision("s", "a", 1.0, "ONE")]}
    good = json.loads(json.dumps(cut))
    broken(cut)
    manifest = write_lines(corpus / "cuts.jsonl.gz", [good, cut])
    with pytest.raises(ManifestError, match=f"cuts.jsonl.gz:2: .*{message}"):
        read_manifest(manifest)


def test_a_truncated_gzip_is_named(corpus):
    """Seen to fail: gzip's EOFError escaped as a traceback when only OSError was caught."""
    cut = {"id": "c", "start": 0.0, "duration": 1.0, "channel": 0, "type": "MonoCut",
           "recording": recording("a", "audio/a.flac", 1.0),
           "supervisions": [supervision("s", "a", 1.0, "ONE")]}
    manifest = write_lines(corpus / "cuts.jsonl.gz", [cut] * 50)
    manifest.write_bytes(manifest.read_bytes()[:-12])
    with pytest.raises(ManifestError, match="cuts.jsonl.gz: cannot read it"):
        read_manifest(manifest)
