"""Lhotse manifests (the icefall and NeMo recipes' format) read as they are: a CutSet, or a
SupervisionSet with its RecordingSet, gzipped JSON lines, checked by `data check`; a supervision
inside a longer recording is a span of its file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechprune.config import DataCheckConfig
from speechprune.data.audio import load_audio
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


def samples_of(path: Path) -> np.ndarray:
    return sf.read(str(path), dtype="float32")[0]


def loaded(utterance) -> np.ndarray:
    return load_audio(utterance.audio_filepath, RATE, *utterance.span)


def test_two_supervisions_inside_one_recording_are_two_spans_of_its_file(corpus):
    """The layout of most icefall recipes: long recordings, a supervision per sentence.
    Seen to fail: the supervision's own start left out (start = cut_start: the "PART" span
    was read from 0 s)."""
    write_lines(corpus / "x_recordings.jsonl.gz", [recording("a", "audio/a.flac", 1.0)])
    manifest = write_lines(corpus / "x_supervisions.jsonl.gz",
                           [supervision("s1", "a", 0.3, "PART", start=0.5),
                            supervision("s2", "a", 0.25, "LEAD")])
    first, second = read_manifest(manifest)
    assert (first.offset, first.duration, first.text) == (0.5, 0.3, "PART")
    assert (second.offset, second.duration, second.source) == (0.0, 0.25, f"{manifest}:2")
    whole = samples_of(corpus / "audio" / "a.flac")
    np.testing.assert_array_equal(loaded(first), whole[8000:12800])
    np.testing.assert_array_equal(loaded(second), whole[:4000])


def test_a_cut_that_is_a_window_of_its_recording_gives_a_span_per_supervision(corpus):
    """A supervision's start counts from its cut's start, which counts from the recording's.
    Seen to fail: the cut's start left out of the offset (the spans began 0.2 s too early)."""
    cut = {"id": "w", "start": 0.2, "duration": 0.7, "channel": 0, "type": "MonoCut",
           "recording": recording("a", "audio/a.flac", 1.0),
           "supervisions": [supervision("s1", "a", 0.3, "ONE", start=0.1),
                            supervision("s2", "a", 0.2, "TWO", start=0.5)]}
    manifest = write_lines(corpus / "windows_cuts.jsonl.gz", [cut])
    one, two = read_manifest(manifest)
    assert (one.offset, two.offset) == (pytest.approx(0.3), pytest.approx(0.7))
    assert one.source == f"{manifest}:1 (supervision 's1')"
    whole = samples_of(corpus / "audio" / "a.flac")
    np.testing.assert_array_equal(loaded(one), whole[4800:9600])
    np.testing.assert_array_equal(loaded(two), whole[11200:14400])


def test_a_supervision_covering_its_recording_reads_the_whole_file_as_before(corpus):
    """Seen to fail: every supervision made a span (offset 0.0 and the supervision's 0.999 s
    instead of the whole file's 1.0 s)."""
    write_lines(corpus / "w_recordings.jsonl.gz", [recording("a", "audio/a.flac", 1.0)])
    manifest = write_lines(corpus / "w_supervisions.jsonl.gz",
                           [supervision("s", "a", 0.999, "ALL")])
    [utterance] = read_manifest(manifest)
    assert (utterance.offset, utterance.duration) == (None, 1.0)


def two_channels(entry: dict) -> dict:
    entry["channel_ids"] = [0, 1]
    entry["sources"][0]["channels"] = [0, 1]
    return entry


@pytest.mark.parametrize("change_recording, change_supervision, message", [
    (lambda r: r, lambda s: s.update(start=0.8),
     r"supervision 's1' fields 'start' and 'duration' cover 0.800-1.300 s, not inside its "
     r"1.000 s recording 'a'"),
    (lambda r: r, lambda s: s.update(start=-0.5), r"supervision 's1' .* cover -0.500-0.000 s"),
    (two_channels, lambda s: s.update(channel=1),
     r"supervision 's1' field 'channel' selects 1 of the 2-channel recording 'a'"),
    (lambda r: r.update(transforms=[{"name": "Speed", "kwargs": {"factor": 1.1}}]), lambda s: s,
     r"recording 'a' field 'transforms' asks for \['Speed'\]"),
])
def test_what_stays_unsupported_is_an_error_naming_the_file_line_and_field(
        corpus, change_recording, change_supervision, message):
    """Seen to fail: the range check removed (the 0.8 s span past the end was read as an
    utterance), and the channel check removed (channel 1 read as the mean of both)."""
    entry = recording("a", "audio/a.flac", 1.0)
    change_recording(entry)
    write_lines(corpus / "u_recordings.jsonl.gz", [entry])
    bad = supervision("s1", "a", 0.5, "PART")
    change_supervision(bad)
    manifest = write_lines(corpus / "u_supervisions.jsonl.gz",
                           [{**supervision("s0", "a", 0.5, "FINE", start=0.5),
                             "channel": [0, 1]}, bad])
    where = r"u_recordings.jsonl.gz:1" if "transforms" in message else "u_supervisions.jsonl.gz:2"
    with pytest.raises(ManifestError, match=f"{where}: {message}"):
        read_manifest(manifest)


def test_all_channels_of_a_multichannel_recording_are_its_mono_downmix(corpus):
    """Seen to fail: a list of channels taken as one selection (a set of one tuple: "selects
    [0, 1] of the 2-channel recording")."""
    write_lines(corpus / "m_recordings.jsonl.gz",
                [two_channels(recording("a", "audio/a.flac", 1.0))])
    manifest = write_lines(corpus / "m_supervisions.jsonl.gz",
                           [{**supervision("s", "a", 0.5, "BOTH"), "channel": [0, 1]}])
    assert [u.text for u in read_manifest(manifest)] == ["BOTH"]


@pytest.mark.parametrize("broken, message", [
    (lambda cut: cut.pop("recording"), "needs its recording and at least one supervision"),
    (lambda cut: cut.update(supervisions=[]), r"at least one supervision \(found 0"),
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


def test_data_check_reports_a_supervision_past_the_end_of_its_file_on_its_line(corpus):
    """The RecordingSet says 2 s, the file holds 1 s: the second supervision (1.2-1.6 s) is
    reported beyond_end on its line, the first, a clean span, passes. Seen to fail:
    check_audio inspecting the whole file for a span (no beyond_end; duration_mismatch on
    both lines)."""
    write_lines(corpus / "c_recordings.jsonl.gz", [recording("a", "audio/a.flac", 2.0)])
    manifest = write_lines(corpus / "c_supervisions.jsonl.gz",
                           [supervision("s1", "a", 0.5, "HELLO", start=0.2),
                            supervision("s2", "a", 0.4, "GONE", start=1.2)])
    report = check_manifest(manifest, DataCheckConfig(manifest=str(manifest)))
    assert [(p.where, p.kind) for p in report.problems] == [(f"{manifest}:2", "beyond_end")]
    assert "a.flac: the span 1.200-1.600 s ends past the end of the 1.000 s file" in str(
        report.problems[0])
