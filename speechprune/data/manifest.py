"""Utterance lists ("manifests"): reading the supported corpus layouts, filtering, writing.

The native format is NeMo-style JSON lines, one utterance per line:
`{"audio_filepath": ..., "duration": seconds, "text": ...}` (extra keys such as "speaker" are
kept); NeMo's optional `"offset": seconds` makes the entry the span of `duration` seconds from
there (a segment of a longer recording). Users may also bring, behind the one interface
`read_manifest`:

- CSV: `wav_path,transcript` or `wav_path,transcript_path` rows, with or without a header line;
  with a header the columns are found by name, and an optional `duration` column (seconds)
  saves reading the audio headers.
- A LibriSpeech tree: `<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt` beside the
  `.flac` files.
- A Common Voice `*.tsv` (columns client_id, path, sentence, ...) with the audio in `clips/`
  beside it; `clip_durations.tsv` there, when present, supplies the durations.
- Lhotse JSON lines (`read_lhotse`): a CutSet, or a SupervisionSet with its RecordingSet; a
  supervision inside a longer recording is a span of it.

Relative audio paths are relative to the manifest's folder; every Utterance carries an absolute
audio path and `source` = "file:line" of the entry it came from, so any later error can name it.
Durations the format does not state are read from the audio file headers; a file that cannot be
read gets a NaN duration here and is reported by `speechprune data check` (or dropped/raised by
`load_utterances`, as `data.bad_input` says).
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import os
from collections import Counter
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from tqdm import tqdm

from speechprune.atomic_write import atomic_open
from speechprune.data.audio import SPAN_END_TOLERANCE_S, AudioError, audio_duration

if TYPE_CHECKING:
    from speechprune.config import DataConfig

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv", "librispeech", "commonvoice", "lhotse")

# Header reads are dominated by file-system latency (one open + a few KB each), not CPU, so a
# few threads hide it on network and cold disks without loading the shared CPUs.
_HEADER_READ_THREADS = 8

# First-cell values that mark a CSV header line, and the names each column may go by.
_CSV_AUDIO_COLUMNS = ("wav_path", "audio_filepath", "audio_path", "path", "audio", "wav", "file")
_CSV_TEXT_COLUMNS = ("transcript", "text", "sentence")
_CSV_TEXT_PATH_COLUMNS = ("transcript_path", "text_path", "transcript_file")


# Decimals of a span's offset and duration in a written manifest: microseconds, so that each
# rounds back to the sample it came from at any rate up to 500 kHz.
_SPAN_DECIMALS = 6


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Utterance:
    """One utterance: a whole audio file, or with `offset` the span of `duration` seconds
    from `offset` seconds into it (a segment of a longer recording)."""

    audio_filepath: str  # absolute path
    duration: float  # seconds; NaN when the format gives none and the file header is unreadable
    text: str  # transcript as found in the corpus (normalized later)
    source: str = ""  # "file:line" of the manifest entry, for error messages
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    offset: float | None = None  # seconds into the file where a span starts; None: whole file

    @property
    def span(self) -> tuple[float | None, float | None]:
        """(offset_s, duration_s) for `load_audio`: (None, None) for a whole file."""
        return (None, None) if self.offset is None else (self.offset, self.duration)


def _audio_path(folder: str, audio: str) -> str:
    """Absolute path of `audio`, taken relative to `folder` (the manifest's) when it is relative."""
    # os.path on strings, not pathlib: a Path per line took 2.4 s of a 100k-line manifest.
    return os.path.abspath(os.path.join(folder, audio))


# --------------------------------------------------------------------------------------------
# The one entry point
# --------------------------------------------------------------------------------------------


def detect_format(path: str | Path) -> str:
    """The manifest format of `path`, from its suffix, or "librispeech" for a directory."""
    path = Path(path)
    if path.is_dir():
        return "librispeech"
    suffix = path.suffix.lower()
    if path.name.lower().endswith(".jsonl.gz"):  # speechprune's own manifests are not gzipped
        return "lhotse"
    if suffix in {".jsonl", ".json"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".tsv":
        return "commonvoice"
    raise ManifestError(
        f"{path}: cannot tell the manifest format from the name; use a .jsonl, .csv, .tsv or "
        f"Lhotse .jsonl.gz file or a LibriSpeech directory, or name it with "
        f"format=<{'|'.join(FORMATS)}>"
    )


def read_manifest(path: str | Path, fmt: str = "auto") -> list[Utterance]:
    """All utterances of a manifest in file order. `fmt`: "auto" or one of FORMATS."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"{path}: manifest not found")
    if fmt == "auto":
        fmt = detect_format(path)
    readers = {"jsonl": read_jsonl, "csv": read_csv, "librispeech": read_librispeech,
               "commonvoice": read_commonvoice, "lhotse": read_lhotse}
    if fmt not in readers:
        raise ManifestError(f"unknown manifest format {fmt!r}; use auto or one of {FORMATS}")
    if (fmt == "librispeech") != path.is_dir():
        kind = "a directory" if fmt == "librispeech" else "a file"
        raise ManifestError(f"{path}: format {fmt!r} expects {kind}")
    return readers[fmt](path)


# --------------------------------------------------------------------------------------------
# The formats
# --------------------------------------------------------------------------------------------


def _json_lines(path: Path):
    """(where, entry) of each non-blank line of a JSON-lines manifest, gzipped or not."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    where = f"{path}:{number}"
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError as error:
                        raise ManifestError(f"{where}: not valid JSON ({error.msg})") from None
                    yield where, entry
    except (OSError, EOFError) as error:  # unreadable, or a corrupt or truncated .gz
        raise ManifestError(f"{path}: cannot read it ({error})") from None


def read_jsonl(path: str | Path) -> list[Utterance]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    utterances = []
    folder = str(path.parent)
    for where, entry in _json_lines(path):
        try:
            audio = entry.pop("audio_filepath")
            duration = float(entry.pop("duration"))
            text = str(entry.pop("text"))
        except KeyError as error:
            raise ManifestError(f"{where}: missing key {error.args[0]!r}") from None
        except (TypeError, ValueError):
            raise ManifestError(f"{where}: 'duration' must be a number of seconds") from None
        offset = _nemo_offset(entry.pop("offset", None), duration, where)
        utterances.append(Utterance(_audio_path(folder, audio), duration, text, where, entry,
                                    offset))
    return utterances


def _nemo_offset(value, duration: float, where: str) -> float | None:
    """The `offset` (seconds) of a NeMo manifest entry, None without one. A span past the end
    of its file is found when the audio is read (`data check`, or data.bad_input at training),
    as a missing file is: the reader opens no audio."""
    if value is None:
        return None
    try:
        offset = float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: 'offset' must be a number of seconds") from None
    if not offset >= 0 or not duration >= 0:  # also refuses NaN
        raise ManifestError(f"{where}: a span needs 'offset' >= 0 and 'duration' >= 0 seconds, "
                            f"got offset {value!r} and duration {duration!r}")
    return offset


@dataclass(frozen=True)
class _CsvColumns:
    audio: int
    text: int | None  # index of the transcript column, or
    text_path: int | None  # of the column naming a transcript file
    duration: int | None
    names: tuple[str, ...] = ()  # header names (empty without a header)


def _csv_columns(first_row: list[str], where: str) -> tuple[_CsvColumns, bool]:
    """The column layout of a CSV manifest, and whether `first_row` is a header line."""
    cells = [cell.strip().lower() for cell in first_row]
    if cells and cells[0] in _CSV_AUDIO_COLUMNS:

        def find(names: tuple[str, ...]) -> int | None:
            return next((cells.index(name) for name in names if name in cells), None)

        columns = _CsvColumns(find(_CSV_AUDIO_COLUMNS), find(_CSV_TEXT_COLUMNS),
                              find(_CSV_TEXT_PATH_COLUMNS), find(("duration",)), tuple(cells))
        if columns.text is None and columns.text_path is None:
            raise ManifestError(
                f"{where}: the header names no transcript column; name one of "
                f"{_CSV_TEXT_COLUMNS + _CSV_TEXT_PATH_COLUMNS}"
            )
        return columns, True
    if len(cells) != 2:
        raise ManifestError(
            f"{where}: expected 2 columns (wav_path,transcript or wav_path,transcript_path), "
            f"got {len(cells)}; quote transcripts that contain commas, or add a header line"
        )
    # Without a header, a second column naming .txt files holds transcript paths.
    if cells[1].endswith(".txt"):
        return _CsvColumns(0, None, 1, None), False
    return _CsvColumns(0, 1, None, None), False


def read_csv(path: str | Path) -> list[Utterance]:
    """A CSV manifest: `wav_path,transcript` or `wav_path,transcript_path` rows."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    rows: list[tuple[str, list[str]]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((f"{path}:{reader.line_num}", row))
    if not rows:
        return []
    columns, has_header = _csv_columns(rows[0][1], rows[0][0])
    if has_header:
        rows = rows[1:]
    audio_paths, texts, durations, sources, extras = [], [], [], [], []
    for where, row in rows:
        needed = max(i for i in (columns.audio, columns.text, columns.text_path,
                                 columns.duration) if i is not None)
        if len(row) <= needed:
            raise ManifestError(
                f"{where}: {len(row)} columns, fewer than the {needed + 1} of the first line"
            )
        audio = row[columns.audio].strip()
        if not audio:
            raise ManifestError(f"{where}: empty audio path")
        if columns.text is not None:
            text = row[columns.text].strip()
        else:
            text = _read_transcript_file(path, row[columns.text_path].strip(), where)
        try:
            duration = float(row[columns.duration]) if columns.duration is not None else None
        except ValueError:
            raise ManifestError(f"{where}: 'duration' must be a number of seconds") from None
        used = {columns.audio, columns.text, columns.text_path, columns.duration}
        extra = {name: row[index] for index, name in enumerate(columns.names)
                 if index not in used and index < len(row)}
        audio_paths.append(_audio_path(str(path.parent), audio))
        texts.append(text)
        durations.append(duration)
        sources.append(where)
        extras.append(extra)
    missing = [index for index, duration in enumerate(durations) if duration is None]
    for index, duration in zip(missing, durations_from_headers([audio_paths[i] for i in missing])):
        durations[index] = duration
    return [Utterance(*fields) for fields in zip(audio_paths, durations, texts, sources, extras)]


def _read_transcript_file(manifest: Path, name: str, where: str) -> str:
    transcript = Path(_audio_path(str(manifest.parent), name))
    try:
        # A transcript file may wrap its one sentence over several lines.
        return " ".join(transcript.read_text(encoding="utf-8").split())
    except FileNotFoundError:
        raise ManifestError(f"{where}: transcript file {transcript} not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ManifestError(f"{where}: cannot read transcript file {transcript} ({error})") from None


def read_librispeech(root: str | Path) -> list[Utterance]:
    """Every utterance under a LibriSpeech tree (a split such as `dev-clean/`, or a folder of
    splits), sorted by transcript file; `source` is the .trans.txt file and line."""
    root = Path(root)
    transcript_files = sorted(root.rglob("*.trans.txt"))
    if not transcript_files:
        raise ManifestError(
            f"{root}: no *.trans.txt found; a LibriSpeech tree holds "
            "<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt beside the .flac files"
        )
    audio_paths, texts, sources, speakers = [], [], [], []
    for transcripts in transcript_files:
        with transcripts.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                utterance_id, _, text = line.strip().partition(" ")
                audio_paths.append(os.path.abspath(transcripts.parent / f"{utterance_id}.flac"))
                texts.append(text.strip())
                sources.append(f"{transcripts}:{number}")
                speakers.append(utterance_id.split("-")[0])
    durations = durations_from_headers(audio_paths)
    return [Utterance(audio, duration, text, where, {"speaker": speaker})
            for audio, duration, text, where, speaker
            in zip(audio_paths, durations, texts, sources, speakers)]


def read_commonvoice(path: str | Path) -> list[Utterance]:
    """A Common Voice `*.tsv` (train.tsv, validated.tsv, ...) with its audio in `clips/`."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    clips = path.parent / "clips"
    audio_paths, texts, sources, speakers = [], [], [], []
    with path.open(encoding="utf-8", newline="") as handle:
        # Common Voice writes sentences with bare quotes: the tab is the only delimiter.
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"path", "sentence"} - set(reader.fieldnames or ())
        if missing:
            raise ManifestError(
                f"{path}:1: a Common Voice tsv needs the columns path and sentence; "
                f"missing {sorted(missing)}"
            )
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not row["path"]:
                raise ManifestError(f"{where}: empty path")
            audio_paths.append(os.path.abspath(clips / row["path"]))
            texts.append((row["sentence"] or "").strip())
            sources.append(where)
            speakers.append(row.get("client_id") or "")
    known = _commonvoice_clip_durations(path.parent / "clip_durations.tsv")
    durations = [known.get(Path(audio).name) for audio in audio_paths]
    missing_indices = [index for index, duration in enumerate(durations) if duration is None]
    read = durations_from_headers([audio_paths[index] for index in missing_indices])
    for index, duration in zip(missing_indices, read):
        durations[index] = duration
    return [Utterance(audio, duration, text, where, {"speaker": speaker})
            for audio, duration, text, where, speaker
            in zip(audio_paths, durations, texts, sources, speakers)]


def _commonvoice_clip_durations(path: Path) -> dict[str, float]:
    """Seconds per clip name from Common Voice's `clip_durations.tsv` (milliseconds), if any."""
    if not path.is_file():
        return {}
    durations = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            try:
                durations[row[0]] = float(row[1]) / 1000.0
            except (IndexError, ValueError):
                continue  # the header line, or a malformed row: read that clip's header instead
    return durations


@contextmanager
def _entry_errors(where: str):
    """A key missing from a manifest entry, or a value of the wrong type, as a ManifestError
    naming its line."""
    try:
        yield
    except ManifestError:
        raise
    except KeyError as error:
        raise ManifestError(f"{where}: missing key {error.args[0]!r}") from None
    except (TypeError, ValueError) as error:
        raise ManifestError(f"{where}: unexpected value ({error})") from None


@dataclass(frozen=True)
class _LhotseRecording:
    id: str
    audio: str  # absolute path of its one audio file
    duration: float  # seconds
    channels: int  # channel ids the recording holds


def _lhotse_recording(recording: dict, where: str, folder: str) -> _LhotseRecording:
    """A Lhotse recording with one file source, read as it is stored."""
    sources = recording.get("sources") or []
    if len(sources) != 1 or sources[0].get("type") != "file":
        raise ManifestError(f"{where}: recording {recording.get('id')!r} needs exactly one "
                            f"source of type 'file' (speechprune reads audio files)")
    # Resampling changes nothing here (audio is resampled to data.features.sample_rate anyway);
    # any other transform (speed, volume, reverberation) would change what is heard.
    transforms = [t.get("name") for t in recording.get("transforms") or []
                  if t.get("name") != "Resample"]
    if transforms:
        raise ManifestError(f"{where}: recording {recording.get('id')!r} field 'transforms' asks "
                            f"for {transforms}; speechprune reads the audio as stored: save the "
                            f"transformed audio first (Lhotse: cuts.save_audios(...))")
    return _LhotseRecording(str(recording["id"]), _audio_path(folder, sources[0]["source"]),
                            float(recording["duration"]), len(recording.get("channel_ids") or [0]))


def _check_lhotse_channel(entry: dict, kind: str, recording: _LhotseRecording,
                          where: str) -> None:
    """Refuse a channel selection other than all of a multi-channel recording's channels:
    speechprune reads their mean (mono downmix)."""
    selected = entry.get("channel")
    if recording.channels < 2 or selected is None:
        return
    chosen = set(selected) if isinstance(selected, list) else {selected}
    if len(chosen) < recording.channels:
        raise ManifestError(
            f"{where}: {kind} {entry.get('id')!r} field 'channel' selects {selected!r} of the "
            f"{recording.channels}-channel recording {recording.id!r}; speechprune reads the "
            f"mean of all channels: select them all, or save the channel's audio first")


def _lhotse_utterance(supervision: dict, recording: _LhotseRecording, where: str,
                      cut_start: float = 0.0) -> Utterance:
    """The utterance of a supervision: its recording's whole file when it covers the
    recording, else the span it covers (`cut_start` seconds into the recording plus the
    supervision's own start)."""
    _check_lhotse_channel(supervision, "supervision", recording, where)
    start = cut_start + float(supervision.get("start", 0.0))
    length = float(supervision["duration"])
    if not (length > 0 and start >= -SPAN_END_TOLERANCE_S
            and start + length <= recording.duration + SPAN_END_TOLERANCE_S):
        raise ManifestError(
            f"{where}: supervision {supervision.get('id')!r} fields 'start' and 'duration' cover "
            f"{start:.3f}-{start + length:.3f} s, not inside its {recording.duration:.3f} s "
            f"recording {recording.id!r}; trim or drop it (Lhotse: "
            f"lhotse.qa.fix_manifests(recordings, supervisions))")
    extra = {key: supervision[key] for key in ("speaker", "language") if key in supervision}
    text = str(supervision.get("text") or "")
    if abs(start) <= 1e-3 and abs(length - recording.duration) <= 0.01:
        return Utterance(recording.audio, recording.duration, text, where, extra)
    return Utterance(recording.audio, length, text, where, extra, offset=max(start, 0.0))


def read_lhotse(path: str | Path) -> list[Utterance]:
    """A Lhotse manifest (the icefall and NeMo recipes' format), JSON lines, gzipped or not:
    a CutSet (each line a cut with its recording and supervisions), or a SupervisionSet whose
    RecordingSet lies beside it under the same name with "recordings" for "supervisions"
    (`<corpus>_supervisions_<part>.jsonl.gz`). Relative audio paths are taken from the
    manifest's folder. Each supervision is one utterance: the whole file when it covers its
    recording, else the span of the recording it covers."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    if "supervisions" in path.name:
        return _read_lhotse_supervisions(path)
    utterances = []
    for where, cut in _json_lines(path):
        with _entry_errors(where):
            utterances.extend(_lhotse_cut(cut, where, str(path.parent)))
    return utterances


def _read_lhotse_supervisions(path: Path) -> list[Utterance]:
    recordings_path = path.with_name(path.name.replace("supervisions", "recordings"))
    if not recordings_path.is_file():
        raise ManifestError(f"{path}: a Lhotse SupervisionSet needs its RecordingSet "
                            f"{recordings_path.name} beside it")
    recordings = {}
    for where, entry in _json_lines(recordings_path):
        with _entry_errors(where):
            recordings[entry["id"]] = _lhotse_recording(entry, where, str(path.parent))
    utterances = []
    for where, supervision in _json_lines(path):
        if supervision.get("recording_id") not in recordings:
            raise ManifestError(f"{where}: recording {supervision.get('recording_id')!r} is "
                                f"not in {recordings_path.name}")
        with _entry_errors(where):
            recording = recordings[supervision["recording_id"]]
            utterances.append(_lhotse_utterance(supervision, recording, where))
    return utterances


def _lhotse_cut(cut: dict, where: str, folder: str) -> list[Utterance]:
    """One utterance per supervision of a cut (a window of its recording, or all of it)."""
    supervisions = cut.get("supervisions") or []
    if "recording" not in cut or not supervisions:
        raise ManifestError(f"{where}: a Lhotse cut needs its recording and at least one "
                            f"supervision (found {len(supervisions)}; a MixedCut has neither: "
                            f"save its audio first)")
    recording = _lhotse_recording(cut["recording"], where, folder)
    _check_lhotse_channel(cut, "cut", recording, where)
    cut_start = float(cut.get("start", 0.0))
    if len(supervisions) == 1:
        return [_lhotse_utterance(supervisions[0], recording, where, cut_start)]
    # Several utterances share the line: each names its supervision too.
    return [_lhotse_utterance(supervision, recording,
                              f"{where} (supervision {supervision.get('id')!r})", cut_start)
            for supervision in supervisions]


def durations_from_headers(audio_paths: list[str]) -> list[float]:
    """Seconds of each file, read from its header only (in parallel threads); NaN for a file
    that is missing or unreadable."""

    def duration_or_nan(audio: str) -> float:
        try:
            return audio_duration(audio)
        except AudioError:
            return math.nan

    if not audio_paths:
        return []
    with ThreadPoolExecutor(max_workers=_HEADER_READ_THREADS) as pool:
        return list(tqdm(pool.map(duration_or_nan, audio_paths), total=len(audio_paths),
                         desc="reading audio headers", unit="file", leave=False, disable=None))


# --------------------------------------------------------------------------------------------
# Filtering and loading
# --------------------------------------------------------------------------------------------


def filter_by_duration(utterances: Iterable[Utterance], min_s: float,
                       max_s: float) -> tuple[list[Utterance], int]:
    """Utterances with min_s <= duration <= max_s (seconds), and how many were dropped.
    An unknown (NaN) duration is outside every range."""
    utterances = list(utterances)
    kept = [u for u in utterances if min_s <= u.duration <= max_s]
    return kept, len(utterances) - len(kept)


# The kind under which utterances outside [min_duration_s, max_duration_s] are counted.
OUTSIDE_DURATION_RANGE = "outside_duration_range"


def audio_problem_kind(utterance: Utterance) -> tuple[str, str]:
    """(kind, message) of an utterance whose audio could not be read: the AudioError's kind
    (missing, unreadable, empty...) as reading it again reports it."""
    try:
        audio_duration(utterance.audio_filepath)
    except AudioError as error:
        return error.kind, str(error)
    return "unreadable", "unreadable audio"


def load_utterances(path: str | Path, data_cfg: "DataConfig",
                    skipped: Counter[str] | None = None) -> list[Utterance]:
    """The utterances of a manifest as the data config asks: read in `data_cfg.format`, audio
    that cannot be read dropped with a warning (or an error when data.bad_input=error), then
    filtered to [min_duration_s, max_duration_s]. Each dropped line is counted by kind in
    `skipped` when given, so that a run can report what it left out."""
    if data_cfg.bad_input not in {"skip", "error"}:
        raise ValueError(f"data.bad_input must be 'skip' or 'error', got {data_cfg.bad_input!r}")
    utterances = read_manifest(path, data_cfg.format)
    unreadable = [u for u in utterances if math.isnan(u.duration)]
    if unreadable:
        first = unreadable[0]
        kind, reason = audio_problem_kind(first)
        if data_cfg.bad_input == "error":
            raise ManifestError(
                f"{first.source}: {reason}; fix or remove the entry, list all such entries "
                f"with `speechprune data check manifest={path}`, or set data.bad_input=skip"
            )
        log.warning("%s: skipped %d utterance(s) whose audio cannot be read, first %s: %s",
                    path, len(unreadable), first.source, reason)
        if skipped is not None:
            skipped.update([kind] + [audio_problem_kind(u)[0] for u in unreadable[1:]])
        utterances = [u for u in utterances if not math.isnan(u.duration)]
    kept, dropped = filter_by_duration(utterances, data_cfg.min_duration_s,
                                       data_cfg.max_duration_s)
    if dropped:
        log.info("%s: dropped %d of %d utterances outside %.2f-%.2f s", path, dropped,
                 len(utterances), data_cfg.min_duration_s, data_cfg.max_duration_s)
        if skipped is not None:
            skipped[OUTSIDE_DURATION_RANGE] += dropped
    return kept


def write_jsonl(utterances: Iterable[Utterance], path: str | Path, relative: bool = True) -> None:
    """Write a JSON-lines manifest atomically; audio paths relative to its folder if `relative`."""
    path = Path(path)
    with atomic_open(path) as out:
        for utterance in utterances:
            audio = Path(utterance.audio_filepath)
            if relative:
                try:
                    audio = audio.resolve().relative_to(path.parent.resolve())
                except ValueError:
                    pass
            entry = {"audio_filepath": str(audio), "duration": round(utterance.duration, 4),
                     "text": utterance.text, **utterance.extra}
            if utterance.offset is not None:
                # A span's offset and duration pick its samples: microseconds keep them exact.
                entry["duration"] = round(utterance.duration, _SPAN_DECIMALS)
                entry["offset"] = round(utterance.offset, _SPAN_DECIMALS)
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
