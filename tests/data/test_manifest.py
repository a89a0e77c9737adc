"""Reading every supported manifest layout into the same utterances, filtering and loading."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechprune.config import DataConfig
from speechprune.data.audio import load_audio
from speechprune.data.manifest import (
    ManifestError,
    Utterance,
    detect_format,
    filter_by_duration,
    load_utterances,
    read_jsonl,
    read_manifest,
    write_jsonl,
)

RATE = 16000
# (duration in seconds, transcript as found in the corpus)
CORPUS = [(0.5, "HELLO WORLD"), (1.25, "THE 3RD DAY, AGAIN"), (0.8, "DON'T STOP")]


def write_tone(path: Path, duration_s: float, rate: int = RATE, **kwargs) -> Path:
    """A 440 Hz tone plus a little noise, `duration_s` seconds long."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(duration_s * rate))) / rate
    noise = np.random.default_rng(0).normal(0, 0.01, t.size)
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t) + noise).astype(np.float32), rate,
             **kwargs)
    return path


def expected(paths: list[Path]) -> list[tuple[str, float, str]]:
    return [(str(p.resolve()), d, text) for p, (d, text) in zip(paths, CORPUS)]


def observed(utterances: list[Utterance]) -> list[tuple[str, float, str]]:
    return [(str(Path(u.audio_filepath).resolve()), round(u.duration, 4), u.text)
            for u in utterances]


def wav_files(folder: Path) -> list[Path]:
    return [write_tone(folder / "wavs" / f"utt{i}.wav", d) for i, (d, _) in enumerate(CORPUS)]


def build_jsonl(folder: Path) -> tuple[Path, list[Path]]:
    paths = wav_files(folder)
    manifest = folder / "train.jsonl"
    write_jsonl([Utterance(str(p), d, text) for p, (d, text) in zip(paths, CORPUS)], manifest)
    return manifest, paths


def build_csv_transcript(folder: Path, header: bool = True) -> tuple[Path, list[Path]]:
    paths = wav_files(folder)
    manifest = folder / "train.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(["wav_path", "transcript"])
        writer.writerows([f"wavs/{p.name}", text] for p, (_, text) in zip(paths, CORPUS))
    return manifest, paths


def build_csv_transcript_path(folder: Path, header: bool = True) -> tuple[Path, list[Path]]:
    paths = wav_files(folder)
    manifest = folder / "train.csv"
    lines = ["wav_path,transcript_path"] if header else []
    for p, (_, text) in zip(paths, CORPUS):
        (folder / "txt").mkdir(exist_ok=True)
        (folder / "txt" / f"{p.stem}.txt").write_text(text + "\n")
        lines.append(f"wavs/{p.name},txt/{p.stem}.txt")
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, paths


def build_librispeech(folder: Path) -> tuple[Path, list[Path]]:
    """Two speakers: 84/121123 holds utterances 0 and 1, 174/50561 holds utterance 2."""
    root = folder / "LibriSpeech" / "dev-clean"
    ids = ["84-121123-0000", "84-121123-0001", "174-50561-0000"]
    paths = []
    for utterance_id, (duration, _) in zip(ids, CORPUS):
        speaker, chapter, _ = utterance_id.split("-")
        paths.append(write_tone(root / speaker / chapter / f"{utterance_id}.flac", duration))
    for speaker, chapter in [("84", "121123"), ("174", "50561")]:
        lines = [f"{i} {text}" for i, (_, text) in zip(ids, CORPUS) if i.startswith(speaker + "-")]
        (root / speaker / chapter / f"{speaker}-{chapter}.trans.txt").write_text(
            "\n".join(lines) + "\n")
    return root, paths


def build_commonvoice(folder: Path) -> tuple[Path, list[Path]]:
    """Common Voice layout: train.tsv beside clips/ (mp3; the last clip a wav)."""
    cv = folder / "cv-corpus" / "en"
    paths = []
    for i, (duration, _) in enumerate(CORPUS):
        if i < 2:
            paths.append(write_tone(cv / "clips" / f"common_voice_en_{i}.mp3", duration,
                                    format="MP3"))
        else:
            paths.append(write_tone(cv / "clips" / f"common_voice_en_{i}.wav", duration))
    rows = ["client_id\tpath\tsentence\tup_votes\tdown_votes\tage\tgender\taccents\tlocale"]
    for i, (p, (_, text)) in enumerate(zip(paths, CORPUS)):
        rows.append(f"speaker{i % 2}\t{p.name}\t{text}\t2\t0\t\t\t\ten")
    (cv / "train.tsv").write_text("\n".join(rows) + "\n")
    return cv / "train.tsv", paths


BUILDERS = {
    "jsonl": build_jsonl,
    "csv_transcript": build_csv_transcript,
    "csv_transcript_no_header": lambda folder: build_csv_transcript(folder, header=False),
    "csv_transcript_path": build_csv_transcript_path,
    "csv_transcript_path_no_header": lambda f: build_csv_transcript_path(f, header=False),
    "librispeech": build_librispeech,
    "commonvoice": build_commonvoice,
}


@pytest.mark.parametrize("layout", list(BUILDERS))
def test_every_layout_reads_to_the_same_paths_durations_and_texts(tmp_path, layout):
    manifest, paths = BUILDERS[layout](tmp_path)
    utterances = read_manifest(manifest)
    if layout == "librispeech":  # read in sorted transcript-file order: 174/ before 84/
        assert sorted(observed(utterances)) == sorted(expected(paths))
    else:
        assert observed(utterances) == expected(paths)
    assert all(Path(u.audio_filepath).is_absolute() for u in utterances)


@pytest.mark.parametrize("layout, first_line", [
    ("jsonl", 1), ("csv_transcript", 2), ("csv_transcript_no_header", 1), ("commonvoice", 2)])
def test_source_names_the_manifest_file_and_line(tmp_path, layout, first_line):
    manifest, _ = BUILDERS[layout](tmp_path)
    sources = [u.source for u in read_manifest(manifest)]
    assert sources == [f"{manifest}:{first_line + i}" for i in range(len(CORPUS))]


def test_librispeech_source_is_the_transcript_file_and_line_and_speaker_the_first_id(tmp_path):
    root, _ = build_librispeech(tmp_path)
    utterances = read_manifest(root)
    assert [u.source for u in utterances] == [
        f"{root}/174/50561/174-50561.trans.txt:1",
        f"{root}/84/121123/84-121123.trans.txt:1",
        f"{root}/84/121123/84-121123.trans.txt:2",
    ]
    by_file = {Path(u.audio_filepath).stem: u.extra["speaker"] for u in utterances}
    assert by_file == {"84-121123-0000": "84", "84-121123-0001": "84", "174-50561-0000": "174"}


def test_librispeech_reads_from_the_folder_above_the_splits(tmp_path):
    root, paths = build_librispeech(tmp_path)
    utterances = read_manifest(root.parent)  # LibriSpeech/ holding dev-clean/
    assert sorted(observed(utterances)) == sorted(expected(paths))


def test_commonvoice_speaker_is_the_client_id(tmp_path):
    manifest, _ = build_commonvoice(tmp_path)
    assert [u.extra["speaker"] for u in read_manifest(manifest)] == ["speaker0", "speaker1",
                                                                       "speaker0"]


def test_commonvoice_takes_durations_from_clip_durations_tsv_when_present(tmp_path):
    manifest, paths = build_commonvoice(tmp_path)
    # Deliberately different from the files: proves the listed value is used, not the header.
    (manifest.parent / "clip_durations.tsv").write_text(
        f"clip\tduration[ms]\n{paths[0].name}\t4321\n")
    durations = [u.duration for u in read_manifest(manifest)]
    assert durations == pytest.approx([4.321, CORPUS[1][0], CORPUS[2][0]], abs=1e-4)


def test_commonvoice_keeps_quotes_inside_sentences(tmp_path):
    manifest, paths = build_commonvoice(tmp_path)
    manifest.write_text(f'client_id\tpath\tsentence\nx\t{paths[0].name}\tHe said "hi" twice\n')
    assert read_manifest(manifest)[0].text == 'He said "hi" twice'


def test_commonvoice_without_path_or_sentence_column_is_an_error(tmp_path):
    manifest = tmp_path / "train.tsv"
    manifest.write_text("client_id\tfile\ttext\nx\ta.mp3\thi\n")
    with pytest.raises(ManifestError, match=r"train\.tsv:1: .*path and sentence"):
        read_manifest(manifest)


def test_csv_transcript_may_hold_quoted_commas(tmp_path):
    wav = write_tone(tmp_path / "a.wav", 0.3)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f'{wav.name},"well, hello there"\n')
    assert [(u.text, round(u.duration, 3)) for u in read_manifest(manifest)] == [
        ("well, hello there", 0.3)]


def test_csv_duration_column_is_used_instead_of_the_header(tmp_path):
    wav = write_tone(tmp_path / "a.wav", 0.3)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"wav_path,transcript,duration\n{wav.name},hi,7.5\n")
    assert read_manifest(manifest)[0].duration == 7.5


def test_csv_missing_transcript_file_names_the_line(tmp_path):
    write_tone(tmp_path / "a.wav", 0.3)
    manifest = tmp_path / "m.csv"
    manifest.write_text("wav_path,transcript_path\na.wav,a.txt\n")
    with pytest.raises(ManifestError, match=r"m\.csv:2: transcript file .*a\.txt not found"):
        read_manifest(manifest)


def test_csv_without_header_and_with_three_columns_is_an_error(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("a.wav,hello,extra\n")
    with pytest.raises(ManifestError, match=r"m\.csv:1: expected 2 columns"):
        read_manifest(manifest)


def test_missing_audio_gets_an_unknown_duration_instead_of_stopping_the_read(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("gone.wav,hello\n")
    [utterance] = read_manifest(manifest)
    assert math.isnan(utterance.duration)
    assert utterance.audio_filepath == str(tmp_path / "gone.wav")


def test_relative_jsonl_manifest_path_still_gives_absolute_audio_paths(tmp_path, monkeypatch):
    manifest, paths = build_jsonl(tmp_path)
    monkeypatch.chdir(tmp_path)
    utterances = read_jsonl(Path(manifest.name))
    assert [u.audio_filepath for u in utterances] == [str(p) for p in paths]


@pytest.mark.parametrize("name, fmt", [
    ("a.jsonl", "jsonl"), ("a.json", "jsonl"), ("a.CSV", "csv"), ("validated.tsv", "commonvoice")])
def test_auto_format_follows_the_suffix(tmp_path, name, fmt):
    assert detect_format(tmp_path / name) == fmt


def test_auto_format_of_a_directory_is_librispeech(tmp_path):
    assert detect_format(tmp_path) == "librispeech"


def test_unknown_suffix_asks_for_an_explicit_format(tmp_path):
    manifest = tmp_path / "list.txt"
    manifest.write_text("x")
    with pytest.raises(ManifestError, match="format="):
        read_manifest(manifest)


def test_explicit_format_overrides_the_suffix(tmp_path):
    manifest, paths = build_csv_transcript(tmp_path)
    renamed = manifest.rename(tmp_path / "list.txt")
    assert observed(read_manifest(renamed, fmt="csv")) == expected(paths)


def test_unknown_format_name_is_an_error(tmp_path):
    manifest, _ = build_jsonl(tmp_path)
    with pytest.raises(ManifestError, match="unknown manifest format 'kaldi'"):
        read_manifest(manifest, fmt="kaldi")


def test_missing_manifest_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def utterances_of(durations: list[float]) -> list[Utterance]:
    return [Utterance(f"/a/{i}.wav", d, "x", f"m:{i + 1}") for i, d in enumerate(durations)]


def test_filter_by_duration_keeps_the_inclusive_range_and_counts_the_rest():
    kept, dropped = filter_by_duration(utterances_of([0.2, 0.5, 1.0, 3.0, 3.01]), 0.5, 3.0)
    assert [u.duration for u in kept] == [0.5, 1.0, 3.0]
    assert dropped == 2


def test_filter_by_duration_drops_unknown_durations():
    kept, dropped = filter_by_duration(utterances_of([1.0, math.nan]), 0.0, 30.0)
    assert [u.duration for u in kept] == [1.0] and dropped == 1


def test_load_utterances_reads_the_configured_format_and_filters_by_duration(tmp_path):
    manifest, paths = build_csv_transcript(tmp_path)
    renamed = manifest.rename(tmp_path / "list.txt")
    cfg = DataConfig(format="csv", min_duration_s=0.6, max_duration_s=1.0)
    assert observed(load_utterances(renamed, cfg)) == [expected(paths)[2]]


def test_load_utterances_skips_unreadable_audio_or_stops_at_its_line(tmp_path):
    manifest, paths = build_csv_transcript(tmp_path)
    paths[1].unlink()
    kept = load_utterances(manifest, DataConfig(bad_input="skip"))
    assert [Path(u.audio_filepath).name for u in kept] == ["utt0.wav", "utt2.wav"]
    with pytest.raises(ManifestError, match=r"train\.csv:3: .*utt1\.wav: audio file not found"):
        load_utterances(manifest, DataConfig(bad_input="error"))


def test_write_then_read_jsonl_round_trips_extra_keys(tmp_path):
    wav = write_tone(tmp_path / "a.wav", 0.25)
    manifest = tmp_path / "m.jsonl"
    write_jsonl([Utterance(str(wav), 0.25, "hi", extra={"speaker": "s1"})], manifest)
    assert json.loads(manifest.read_text())["audio_filepath"] == "a.wav"
    [utterance] = read_jsonl(manifest)
    assert (utterance.audio_filepath, utterance.duration, utterance.text, utterance.extra) == (
        str(wav), 0.25, "hi", {"speaker": "s1"})


def write_nemo(manifest: Path, entries: list[dict]) -> Path:
    manifest.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    return manifest


def test_a_nemo_offset_makes_the_utterance_a_span_of_its_file(tmp_path):
    """NeMo's `offset` key: the entry is `duration` seconds from `offset` seconds into the file.
    Seen to fail: the reader ignoring the offset key (it stayed in `extra`, the utterance was
    the whole file)."""
    wav = write_tone(tmp_path / "long.wav", 2.0)
    manifest = write_nemo(tmp_path / "m.jsonl", [
        {"audio_filepath": "long.wav", "duration": 0.5, "text": "A", "offset": 1.25},
        {"audio_filepath": "long.wav", "duration": 2.0, "text": "B"}])
    span, whole = read_jsonl(manifest)
    assert (span.offset, span.duration, span.extra) == (1.25, 0.5, {})
    assert whole.offset is None
    samples = sf.read(str(wav), dtype="float32")[0]
    np.testing.assert_array_equal(load_audio(span.audio_filepath, RATE, *span.span),
                                  samples[20000:28000])
    np.testing.assert_array_equal(load_audio(whole.audio_filepath, RATE, *whole.span), samples)
    write_jsonl([span, whole], tmp_path / "again.jsonl")  # the span survives a rewrite
    assert [u.offset for u in read_jsonl(tmp_path / "again.jsonl")] == [1.25, None]


@pytest.mark.parametrize("offset, message", [
    (-0.5, r"m.jsonl:2: a span needs 'offset' >= 0 and 'duration' >= 0 seconds, got offset -0.5"),
    ("soon", r"m.jsonl:2: 'offset' must be a number of seconds")])
def test_a_bad_nemo_offset_is_an_error_naming_its_line(tmp_path, offset, message):
    """Seen to fail: the sign check removed (the -0.5 s offset was read as a span)."""
    write_tone(tmp_path / "a.wav", 1.0)
    manifest = write_nemo(tmp_path / "m.jsonl", [
        {"audio_filepath": "a.wav", "duration": 0.5, "text": "A", "offset": 0.0},
        {"audio_filepath": "a.wav", "duration": 0.5, "text": "B", "offset": offset}])
    with pytest.raises(ManifestError, match=message):
        read_jsonl(manifest)
