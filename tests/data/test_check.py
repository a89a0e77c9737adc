"""`speechprune data check` and the per-utterance checks behind it."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechprune.config import DataCheckConfig, TextConfig
from speechprune.data.check import (
    CheckLimits,
    check_manifest,
    check_utterance,
    output_frames,
)
from speechprune.data.manifest import Utterance
from speechprune.data.text import Alphabet

RATE = 16000
ALPHABET = Alphabet.from_config(TextConfig())
LIMITS = CheckLimits(hop_ms=10.0, time_stride=2, duration_tolerance_s=0.1, silence_peak=1e-4)


def write_tone(path: Path, duration_s: float, rate: int = RATE, amplitude: float = 0.3,
               **kwargs) -> Path:
    t = np.arange(int(round(duration_s * rate))) / rate
    sf.write(str(path), (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate,
             **kwargs)
    return path


def cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def problems_of(utterance: Utterance, text_cfg: TextConfig = TextConfig()) -> list[tuple[str, str]]:
    found = check_utterance(utterance, Alphabet.from_config(text_cfg), text_cfg, LIMITS)
    return [(p.where, p.kind) for p in found]


def utterance(path: Path, duration: float, text: str = "a tone") -> Utterance:
    return Utterance(str(path), duration, text, source="m.jsonl:7")


# ----- each problem, one utterance at a time -------------------------------------------------


def test_clean_utterance_has_no_problems(tmp_path):
    assert problems_of(utterance(write_tone(tmp_path / "a.wav", 1.0), 1.0)) == []


def test_missing_audio_is_reported_with_its_line(tmp_path):
    assert problems_of(utterance(tmp_path / "gone.wav", 1.0)) == [("m.jsonl:7", "missing")]


def test_text_file_posing_as_audio_is_unreadable(tmp_path):
    fake = tmp_path / "a.wav"
    fake.write_text("not audio at all")
    assert problems_of(utterance(fake, 1.0)) == [("m.jsonl:7", "unreadable")]


@pytest.mark.parametrize("suffix, subtype", [("wav", "PCM_16"), ("flac", "PCM_16"),
                                              ("wav", "FLOAT")])
def test_file_cut_in_the_middle_is_truncated(tmp_path, suffix, subtype):
    audio = cut_in_half(write_tone(tmp_path / f"a.{suffix}", 2.0, subtype=subtype))
    assert problems_of(utterance(audio, 2.0)) == [("m.jsonl:7", "truncated")]


def test_mp3_cut_in_the_middle_is_truncated(tmp_path):
    audio = cut_in_half(write_tone(tmp_path / "a.mp3", 2.0, format="MP3"))
    assert ("m.jsonl:7", "truncated") in problems_of(utterance(audio, 2.0))


def test_whole_mp3_is_not_truncated(tmp_path):
    audio = write_tone(tmp_path / "a.mp3", 1.3, format="MP3")
    assert problems_of(utterance(audio, 1.3)) == []


@pytest.mark.parametrize("make", ["zero_bytes", "zero_samples"])
def test_audio_without_samples_is_empty(tmp_path, make):
    audio = tmp_path / "a.wav"
    if make == "zero_bytes":
        audio.write_bytes(b"")
    else:
        sf.write(str(audio), np.zeros(0, np.float32), RATE)
    assert problems_of(utterance(audio, 0.0)) == [("m.jsonl:7", "empty")]


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_audio_with_non_finite_samples_is_reported_with_its_count(tmp_path, bad_value):
    """Training and `transcribe` refuse such files (data/audio.py); `data check` must say so
    before a run starts. Seen to fail: with the non_finite problem removed, all three files
    passed as clean (a NaN peak compares false against silence_peak)."""
    audio = write_tone(tmp_path / "a.wav", 1.0, subtype="FLOAT")
    samples, rate = sf.read(str(audio), dtype="float32")
    samples[[10, 500, 9000]] = bad_value
    sf.write(str(audio), samples, rate, subtype="FLOAT")
    found = check_utterance(utterance(audio, 1.0), Alphabet.from_config(TextConfig()),
                            TextConfig(), LIMITS)
    assert [(p.where, p.kind) for p in found] == [("m.jsonl:7", "non_finite")]
    assert "3 NaN or infinite samples" in found[0].message


def test_audio_longer_than_one_read_block_is_decoded_to_its_end(tmp_path):
    """A 6 s file is read in two blocks: infinite samples and the loudest one in the second
    block count, and the file is whole. Seen to fail: stopping after the first block (read as
    truncated, the infinite samples missed); the peak taken over the first block only (silent)."""
    samples = np.zeros(6 * RATE, np.float32)  # the first block ends at 4.1 s
    samples[-RATE:] = 0.5
    samples[[-3, -2]] = np.inf
    audio = tmp_path / "a.wav"
    sf.write(str(audio), samples, RATE, subtype="FLOAT")
    found = check_utterance(utterance(audio, 6.0), Alphabet.from_config(TextConfig()),
                            TextConfig(), LIMITS)
    assert [(p.where, p.kind) for p in found] == [("m.jsonl:7", "non_finite")]
    assert "2 NaN or infinite samples" in found[0].message
    samples[[-3, -2]] = 0.5
    sf.write(str(audio), samples, RATE, subtype="FLOAT")
    assert problems_of(utterance(audio, 6.0)) == []


def test_digital_silence_is_silent_but_quiet_speech_is_not(tmp_path):
    silent = write_tone(tmp_path / "silent.wav", 1.0, amplitude=0.0)
    quiet = write_tone(tmp_path / "quiet.wav", 1.0, amplitude=0.01)
    assert problems_of(utterance(silent, 1.0)) == [("m.jsonl:7", "silent")]
    assert problems_of(utterance(quiet, 1.0)) == []


def test_manifest_duration_beyond_the_tolerance_is_a_mismatch(tmp_path):
    audio = write_tone(tmp_path / "a.wav", 1.0)
    assert problems_of(utterance(audio, 1.05)) == []
    assert problems_of(utterance(audio, 1.5)) == [("m.jsonl:7", "duration_mismatch")]


def test_characters_outside_the_alphabet_are_a_problem_unless_dropped(tmp_path):
    audio = write_tone(tmp_path / "a.wav", 1.0)
    assert problems_of(utterance(audio, 1.0, "café au lait")) == [("m.jsonl:7", "out_of_alphabet")]
    drop = TextConfig(out_of_alphabet="drop")
    assert problems_of(utterance(audio, 1.0, "café au lait"), drop) == []


def test_transcript_longer_than_the_ctc_output_frames_is_too_long(tmp_path):
    # 1 s at a 10 ms hop and time stride 2 gives 50 output frames.
    audio = write_tone(tmp_path / "a.wav", 1.0)
    fits = "abcdefghij" * 5  # 50 labels, no repeated neighbours: exactly 50 frames
    assert output_frames(1.0, 10.0, 2) == 50
    assert problems_of(utterance(audio, 1.0, fits)) == []
    assert problems_of(utterance(audio, 1.0, fits + "k")) == [("m.jsonl:7", "too_long_transcript")]
    # A repeated neighbour needs a blank between: 49 labels with one "ll" need 50 frames.
    assert problems_of(utterance(audio, 1.0, fits[:48] + "jj")) == [
        ("m.jsonl:7", "too_long_transcript")]


def test_time_stride_comes_from_the_check_config():
    cfg = DataCheckConfig(manifest="x", time_stride=3)
    cfg.features.hop_ms = 20.0
    limits = CheckLimits.from_config(cfg)
    assert output_frames(3.0, limits.hop_ms, limits.time_stride) == 50


@pytest.mark.parametrize("workers,start_methods", [(1, None), (2, None), (2, ["spawn"])])
def test_problems_of_a_long_manifest_come_in_manifest_order(tmp_path, monkeypatch, workers,
                                                            start_methods):
    """150 lines, more than two chunks of the checking workers, each third line's audio
    missing; with 2 workers in forked processes (Linux) and in threads (a platform that cannot
    fork). Seen to fail: the chunks' results joined in reverse order; the last, partial chunk
    left out (range stopping at len - chunk); the thread pool given no settings (TypeError)."""
    if start_methods:
        monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: start_methods)
    tone = write_tone(tmp_path / "a.wav", 1.0)
    lines = [{"audio_filepath": str(tmp_path / "gone.wav" if number % 3 == 0 else tone),
              "duration": 1.0, "text": "a tone"} for number in range(1, 151)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = check_manifest(manifest, DataCheckConfig(manifest="unused", workers=workers))
    assert [p.where for p in report.problems] == [f"{manifest}:{number}"
                                                  for number in range(3, 151, 3)]
    assert report.summary() == "150 utterances, 50 problems (missing: 50)"


def test_check_manifest_reads_csv_without_durations_and_finds_truncation(tmp_path):
    write_tone(tmp_path / "ok.flac", 0.7)
    cut_in_half(write_tone(tmp_path / "cut.wav", 2.0))
    (tmp_path / "m.csv").write_text("wav_path,transcript\nok.flac,fine\ncut.wav,cut short\n")
    report = check_manifest(tmp_path / "m.csv", DataCheckConfig(manifest="unused", workers=2))
    assert report.utterances == 2
    # The duration read from the cut file's header agrees with its audio: truncation only.
    assert [(p.where, p.kind) for p in report.problems] == [(f"{tmp_path / 'm.csv'}:3", "truncated")]
    assert report.summary() == "2 utterances, 1 problems (truncated: 1)"


# ----- the command ---------------------------------------------------------------------------


def run_check(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speechprune.cli", "data", "check", *overrides],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def bad_manifest(tmp_path) -> tuple[Path, dict[str, int]]:
    """A JSON-lines manifest with one utterance per problem kind; returns it and kind -> line."""
    good = write_tone(tmp_path / "good.wav", 1.0)
    truncated = cut_in_half(write_tone(tmp_path / "truncated.flac", 2.0))
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), RATE)
    silent = write_tone(tmp_path / "silent.wav", 1.0, amplitude=0.0)
    entries = [
        ("clean", good, 1.0, "a tone"),
        ("missing", tmp_path / "missing.wav", 1.0, "gone"),
        ("truncated", truncated, 2.0, "cut short"),
        ("empty", empty, 0.0, "nothing"),
        ("silent", silent, 1.0, "quiet"),
        ("duration_mismatch", good, 3.0, "wrong length"),
        ("out_of_alphabet", good, 1.0, "naïve"),
        ("too_long_transcript", good, 1.0, "a sentence far too long to fit in one second of "
                                          "audio at fifty output frames"),
    ]
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text("".join(json.dumps({"audio_filepath": str(path), "duration": duration,
                                            "text": text}) + "\n"
                                for _, path, duration, text in entries))
    return manifest, {kind: line for line, (kind, *_) in enumerate(entries, start=1)}


def test_command_prints_each_problem_with_its_line_and_exits_1(bad_manifest):
    manifest, line_of = bad_manifest
    result = run_check(f"manifest={manifest}")
    assert result.returncode == 1, result.stderr
    problem_lines = [line for line in result.stdout.splitlines() if line.startswith(str(manifest))]
    found = {line.split(": ")[1]: int(line.split(": ")[0].rsplit(":", 1)[1])
             for line in problem_lines}
    expected = {kind: line for kind, line in line_of.items() if kind != "clean"}
    assert found == expected
    assert len(problem_lines) == len(expected)
    assert result.stdout.splitlines()[-1] == (
        "8 utterances, 7 problems (missing: 1, truncated: 1, empty: 1, silent: 1, "
        "duration_mismatch: 1, out_of_alphabet: 1, too_long_transcript: 1)")


def test_command_exits_0_on_a_clean_manifest_of_speech(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    lines = []
    for i, words in enumerate(["hello world", "the 2nd test, isn't it?"]):
        wav = tmp_path / f"{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), words], check=True, timeout=30)
        lines.append(f"{wav.name},{json.dumps(words)}")
    (tmp_path / "speech.csv").write_text("\n".join(lines) + "\n")
    result = run_check(f"manifest={tmp_path / 'speech.csv'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "2 utterances, 0 problems"


def test_command_text_overrides_drop_unknown_characters(tmp_path):
    audio = write_tone(tmp_path / "a.wav", 1.0)
    (tmp_path / "m.csv").write_text(f"{audio.name},naïve\n")
    assert run_check(f"manifest={tmp_path / 'm.csv'}").returncode == 1
    dropped = run_check(f"manifest={tmp_path / 'm.csv'}", "text.out_of_alphabet=drop")
    assert dropped.returncode == 0, dropped.stdout


def test_command_reports_an_unreadable_manifest_and_exits_1(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"audio_filepath": "a.wav", "text": "hi"}\n')
    result = run_check(f"manifest={tmp_path / 'm.jsonl'}")
    assert result.returncode == 1
    assert f"{tmp_path / 'm.jsonl'}:1: missing key 'duration'" in result.stdout


# ----- spans of a longer recording ------------------------------------------------------------


@pytest.fixture
def recording(tmp_path) -> Path:
    """3 s of float WAV: a tone (0-1 s), digital silence (1-2 s), a tone with NaN (2-3 s)."""
    t = np.arange(RATE) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    poisoned = tone.copy()
    poisoned[::1000] = np.nan
    samples = np.concatenate([tone, np.zeros(RATE, np.float32), poisoned])
    sf.write(str(tmp_path / "long.wav"), samples, RATE, subtype="FLOAT")
    return tmp_path / "long.wav"


def span(path: Path, offset: float, duration: float, text: str = "a tone") -> Utterance:
    return Utterance(str(path), duration, text, source="m.jsonl:7", offset=offset)


def test_each_span_is_checked_on_its_own_samples(recording):
    """Seen to fail: check_audio inspecting the whole file for a span (the clean first second
    was reported non_finite and duration_mismatch, the NaN being in the last second)."""
    assert problems_of(span(recording, 0.0, 1.0)) == []
    assert problems_of(span(recording, 1.0, 1.0)) == [("m.jsonl:7", "silent")]
    assert problems_of(span(recording, 2.0, 0.5)) == [("m.jsonl:7", "non_finite")]
    # 50 labels need 50 output frames: the 3 s file has 150, the 0.5 s span 25.
    assert problems_of(span(recording, 0.0, 0.5, "abcdefghij" * 5)) == [
        ("m.jsonl:7", "too_long_transcript")]


def test_a_span_past_the_end_of_its_file_is_beyond_end(recording):
    """Seen to fail: span_within's end check removed (the span read to the end of the file
    and passed)."""
    found = check_utterance(span(recording, 2.5, 1.0), ALPHABET, TextConfig(), LIMITS)
    assert [(p.where, p.kind) for p in found] == [("m.jsonl:7", "beyond_end")]
    assert "the span 2.500-3.500 s ends past the end of the 3.000 s file" in found[0].message
    assert problems_of(span(recording, 2.5, 0.51)) == [("m.jsonl:7", "non_finite")]  # tolerance


def test_a_span_in_the_lost_half_of_a_cut_wav_is_truncated_not_beyond_end(tmp_path):
    """The WAV header declares 2 s, only 1 s is left; the span 0.8-1.3 s. Seen to fail: the span measured against
    libsndfile's shortened length instead of the declared one (beyond_end)."""
    audio = cut_in_half(write_tone(tmp_path / "a.wav", 2.0))
    assert problems_of(span(audio, 0.8, 0.5)) == [("m.jsonl:7", "truncated")]
    assert problems_of(span(audio, 0.2, 0.5)) == []


def test_command_reports_a_nemo_span_past_the_end_of_its_file_on_its_line(recording):
    """NeMo `offset` entries of one 3 s file: the span 2.9-3.4 s is reported on line 2.
    Seen to fail: read_jsonl ignoring the offset key (both lines were checked as the whole
    file: non_finite and duration_mismatch on each, no beyond_end)."""
    manifest = recording.parent / "spans.jsonl"
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in [
        {"audio_filepath": recording.name, "duration": 0.8, "text": "a tone", "offset": 0.1},
        {"audio_filepath": recording.name, "duration": 0.5, "text": "a tone", "offset": 2.9}]))
    result = run_check(f"manifest={manifest}")
    assert result.returncode == 1, result.stderr
    assert f"{manifest}:2: beyond_end: {recording}: the span 2.900-3.400 s ends past" in (
        result.stdout)
    assert result.stdout.splitlines()[-1] == "2 utterances, 1 problems (beyond_end: 1)"
