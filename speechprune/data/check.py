"""Validating utterances: every problem that would break or poison training, with its line.

`check_utterance` is the reusable unit (training may call it to skip bad inputs);
`check_manifest` runs it over a whole manifest for `speechprune data check`.

Audio is decoded once per utterance, in blocks (memory stays flat for long files), to find
what a header alone cannot show: a file cut short, digital silence. An utterance that is a span
of its file (`Utterance.offset`) is checked on its span alone: only the span is decoded.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import stat
import struct
from collections import Counter
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from omegaconf import OmegaConf
from tqdm import tqdm

from speechprune.config import DataCheckConfig, TextConfig
from speechprune.data.audio import AudioError, describe_audio, span_within
from speechprune.data.manifest import Utterance, read_manifest
from speechprune.data.text import Alphabet, TranscriptError, ctc_min_frames, normalize_text

# Problem kinds, in the order the summary lists them.
PROBLEM_KINDS = (
    "missing",  # the audio file does not exist
    "unreadable",  # not an audio file soundfile can open
    "truncated",  # fewer samples decode than the header declares, or decoding fails midway
    "beyond_end",  # a span (offset + duration) that ends past the end of its file
    "empty",  # zero samples (or a 0-byte file)
    "non_finite",  # NaN or infinite samples (a float file written from a diverged signal)
    "silent",  # peak amplitude below the silence threshold
    "duration_mismatch",  # the manifest's duration disagrees with the file header's
    "out_of_alphabet",  # normalized transcript has characters outside the alphabet
    "too_long_transcript",  # more CTC labels than the audio gives output frames
)

# Frames decoded per read: bounds memory for long recordings; large enough that the Python
# loop costs nothing next to decoding.
_READ_BLOCK_FRAMES = 1 << 16

# Utterances per task of the checking workers: enough that handing out tasks costs nothing,
# few enough that the workers finish together.
_CHECK_CHUNK = 64

# Compressed formats whose header frame count is an estimate (from bitrate or a Xing/VBRI
# header): a shortfall counts as truncation only beyond the duration tolerance.
_ESTIMATED_LENGTH_FORMATS = {"MP3", "OGG"}


@dataclass(frozen=True)
class Problem:
    where: str  # "file:line" of the manifest entry
    kind: str  # one of PROBLEM_KINDS
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class CheckLimits:
    """The thresholds of the checks."""

    hop_ms: float  # feature hop: one feature frame per hop
    time_stride: int  # the model's total stride in time (feature frames per output frame)
    duration_tolerance_s: float  # largest accepted |manifest duration - file duration|
    silence_peak: float  # peak |amplitude| (full scale 1.0) below which audio is silent

    @classmethod
    def from_config(cls, cfg: DataCheckConfig) -> "CheckLimits":
        return cls(cfg.features.hop_ms, cfg.time_stride, cfg.duration_tolerance_s,
                   cfg.silence_peak)


@dataclass(frozen=True)
class AudioFacts:
    """What decoding one file showed."""

    sample_rate: int  # Hz
    header_frames: int  # samples per channel the header declares
    decoded_frames: int  # samples per channel that actually decoded
    peak: float  # largest |amplitude| decoded, full scale 1.0
    format: str  # soundfile's format name ("WAV", "FLAC", "MP3", ...)
    decode_error: str | None = None  # why decoding stopped early, if it did
    non_finite_samples: int = 0  # NaN or infinite samples, all channels
    span: tuple[int, int] | None = None  # (start, stop) samples decoded of a span; None: all

    @property
    def expected_frames(self) -> int:
        """Samples per channel that should decode: the header's, or the span's."""
        return self.header_frames if self.span is None else self.span[1] - self.span[0]

    @property
    def header_duration_s(self) -> float:
        return self.header_frames / self.sample_rate

    @property
    def decoded_duration_s(self) -> float:
        return self.decoded_frames / self.sample_rate


def output_frames(duration_s: float, hop_ms: float, time_stride: int) -> int:
    """Model output frames for `duration_s` seconds of audio: feature frames (one per hop_ms)
    divided by the model's time stride, rounded down (so the estimate never exceeds what the
    model produces)."""
    return int(duration_s * 1000.0 / hop_ms) // time_stride


def _riff_declared_frames(path: str) -> int | None:
    """Samples per channel a RIFF/WAVE file's `data` chunk declares, or None when the file is
    not plain RIFF or the size is the streaming placeholder. Needed because libsndfile quietly
    shortens the length of a WAV cut short to what the file holds."""
    try:
        with open(path, "rb") as handle:
            riff = handle.read(12)
            if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
                return None
            block_align = None
            while True:
                chunk = handle.read(8)
                if len(chunk) < 8:
                    return None
                chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if chunk_id == b"fmt ":
                    fmt = handle.read(size + (size & 1))
                    block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                elif chunk_id == b"data":
                    # Writers streaming to a pipe leave 0 or 0xFFFFFFFF: the length is unknown.
                    if not block_align or size in (0, 0xFFFFFFFF):
                        return None
                    return size // block_align
                else:
                    handle.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return None


def _peak_and_non_finite(block: np.ndarray) -> tuple[float, int]:
    """(largest |amplitude| of the finite samples, number of NaN or infinite samples) of a
    float block. The extremes are checked first: they are finite exactly when every sample is,
    and two reductions cost a fraction of the masked pass a block with NaN needs."""
    high, low = float(block.max()), float(block.min())
    if math.isfinite(high) and math.isfinite(low):
        return max(high, -low), 0
    finite = np.isfinite(block)
    non_finite = int(block.size - np.count_nonzero(finite))
    return float(np.abs(block, where=finite, out=np.zeros_like(block)).max()), non_finite


def inspect_audio(path: str, offset_s: float | None = None,
                  duration_s: float | None = None) -> AudioFacts:
    """Decode `path` once (or with `offset_s` only its span of `duration_s` seconds) and report
    its header length, decoded length and peak.

    Raises sf.LibsndfileError / RuntimeError when the file cannot be opened at all, and
    AudioError ("beyond_end") for a span past the end of the file."""
    with sf.SoundFile(path) as audio:
        header_frames = _declared_frames(path, audio)
        span = None
        if offset_s is not None:
            span = span_within(path, offset_s, duration_s, header_frames, audio.samplerate)
        decoded, peak, non_finite, error = 0, 0.0, 0, None
        try:
            if span is not None:
                audio.seek(min(span[0], audio.frames))  # a cut WAV holds fewer than declared
            for block in _blocks(audio, None if span is None else span[1] - span[0]):
                decoded += len(block)
                block_peak, block_non_finite = _peak_and_non_finite(block)
                non_finite += block_non_finite
                peak = max(peak, block_peak)
        except (sf.LibsndfileError, RuntimeError) as decode_error:
            error = str(decode_error)
        return AudioFacts(audio.samplerate, header_frames, decoded, peak, audio.format, error,
                          non_finite, span)


def _declared_frames(path: str, audio: sf.SoundFile) -> int:
    """Samples per channel the header declares: a WAV's `data` chunk when libsndfile shortened
    a file cut short to what it holds, else libsndfile's count."""
    declared = _riff_declared_frames(path) if audio.format in ("WAV", "WAVEX") else None
    return max(audio.frames, declared or 0)


def _blocks(audio: sf.SoundFile, frames: int | None):
    """float32 (frames, channels) blocks from the current position: `frames` samples per
    channel, or to the end of the file for None."""
    done = 0
    while frames is None or done < frames:
        want = _READ_BLOCK_FRAMES if frames is None else min(_READ_BLOCK_FRAMES, frames - done)
        block = audio.read(want, dtype="float32", always_2d=True)
        if not len(block):
            return
        done += len(block)
        yield block
        # At the header's end the next read would ask for no frames (soundfile reads no
        # further in a seekable file): skip that call.
        if frames is None and audio.seekable() and audio.tell() >= audio.frames:
            return


def check_audio(utterance: Utterance, limits: CheckLimits) -> tuple[list[Problem], AudioFacts | None]:
    """Problems of the utterance's audio file (or of its span), and what decoding it showed
    (None when it could not be opened)."""
    where, path = utterance.source, utterance.audio_filepath
    try:
        status = os.stat(path)  # once: isfile() and getsize() would each stat the file again
    except (OSError, ValueError):
        status = None
    if status is None or not stat.S_ISREG(status.st_mode):
        return [Problem(where, "missing", f"audio file {path} not found")], None
    if status.st_size == 0:
        return [Problem(where, "empty", f"audio file {path} is 0 bytes")], None
    try:
        facts = inspect_audio(path, *utterance.span)
    except AudioError as error:  # a span past the end of its file
        return [Problem(where, error.kind, str(error))], None
    except (sf.LibsndfileError, RuntimeError) as error:
        return [Problem(where, "unreadable", f"cannot open {path} as audio ({error})")], None

    what = describe_audio(path, *utterance.span)
    problems = []
    shortfall = facts.expected_frames - facts.decoded_frames
    allowed = (limits.duration_tolerance_s * facts.sample_rate
               if facts.format in _ESTIMATED_LENGTH_FORMATS else 0)
    if facts.decode_error is not None or shortfall > allowed:
        problems.append(Problem(where, "truncated", _truncation(facts, what)))
    if facts.expected_frames == 0 and facts.decoded_frames == 0:
        problems.append(Problem(where, "empty", f"{what} holds no samples"))
    elif facts.non_finite_samples:
        problems.append(Problem(where, "non_finite",
                                f"{what}: {facts.non_finite_samples} NaN or infinite samples; "
                                f"re-encode the file from its source"))
    elif facts.decode_error is None and facts.peak < limits.silence_peak:
        problems.append(Problem(where, "silent",
                                f"{what}: peak amplitude {facts.peak:.2g} is below "
                                f"silence_peak={limits.silence_peak:g}"))
    # A span's duration is what is read, not a claim about the file to compare with it.
    # A manifest that agrees with the decoded length of a truncated file (durations read from
    # its header by libsndfile) is not wrong: the truncation is reported already.
    off_by = min(abs(utterance.duration - facts.header_duration_s),
                 abs(utterance.duration - facts.decoded_duration_s))
    if (facts.span is None and not math.isnan(utterance.duration)
            and off_by > limits.duration_tolerance_s):
        problems.append(Problem(where, "duration_mismatch",
                                f"manifest says {utterance.duration:.3f} s but {path} is "
                                f"{facts.header_duration_s:.3f} s (tolerance "
                                f"{limits.duration_tolerance_s:g} s)"))
    return problems, facts


def _truncation(facts: AudioFacts, what: str) -> str:
    """The message of a truncated file, or span, `what`."""
    if facts.span is not None:
        failure = f" ({facts.decode_error})" if facts.decode_error is not None else ""
        return (f"{what}: only {facts.decoded_duration_s:.3f} s of the span's "
                f"{facts.expected_frames / facts.sample_rate:.3f} s decode{failure}")
    if facts.decode_error is not None:
        return (f"{what}: decoding fails before the end of the {facts.header_duration_s:.2f} s "
                f"the header declares ({facts.decode_error})")
    return (f"{what}: header declares {facts.header_duration_s:.3f} s but only "
            f"{facts.decoded_duration_s:.3f} s of audio is there")


def transcript_labels(utterance: Utterance, alphabet: Alphabet, text_cfg: TextConfig) -> list[int]:
    """CTC label indices of the utterance's normalized transcript.

    Raises TranscriptError naming the utterance's file:line for characters outside the
    alphabet (unless the alphabet drops them)."""
    return alphabet.encode(normalize_text(utterance.text, text_cfg), where=utterance.source)


def check_transcript(utterance: Utterance, alphabet: Alphabet, text_cfg: TextConfig,
                     duration_s: float, limits: CheckLimits) -> list[Problem]:
    """Problems of the transcript: characters outside the alphabet, or more CTC labels than
    `duration_s` seconds of audio give output frames."""
    where = utterance.source
    try:
        labels = transcript_labels(utterance, alphabet, text_cfg)
    except TranscriptError as error:
        # The error names `where` first; the problem line already does.
        message = str(error).removeprefix(f"{where}: ")
        return [Problem(where, "out_of_alphabet", message)]
    if math.isnan(duration_s):
        return []
    frames = output_frames(duration_s, limits.hop_ms, limits.time_stride)
    needed = ctc_min_frames(labels)
    if needed > frames:
        return [Problem(where, "too_long_transcript",
                        f"the transcript needs at least {needed} CTC frames but {duration_s:.2f} s "
                        f"of audio gives {frames} (hop {limits.hop_ms:g} ms, time stride "
                        f"{limits.time_stride}); check the pairing of audio and transcript")]
    return []


def check_utterance(utterance: Utterance, alphabet: Alphabet, text_cfg: TextConfig,
                    limits: CheckLimits) -> list[Problem]:
    """Every problem of one utterance: its audio file, then its transcript."""
    problems, facts = check_audio(utterance, limits)
    if any(problem.kind == "empty" for problem in problems):
        duration_s = math.nan  # reported already; no transcript could fit it
    elif facts is None or facts.decode_error is not None:
        duration_s = utterance.duration  # the audio tells nothing reliable: trust the manifest
    else:
        duration_s = facts.decoded_duration_s  # what the model will actually see
    return problems + check_transcript(utterance, alphabet, text_cfg, duration_s, limits)


@dataclass
class CheckReport:
    utterances: int
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> Counter:
        return Counter(problem.kind for problem in self.problems)

    def summary(self) -> str:
        """"12 utterances, 3 problems (missing: 1, silent: 2)"."""
        counts = self.counts()
        by_kind = ", ".join(f"{kind}: {counts[kind]}" for kind in PROBLEM_KINDS if counts[kind])
        text = f"{self.utterances} utterances, {len(self.problems)} problems"
        return f"{text} ({by_kind})" if by_kind else text


# What each worker process checks against, set once when the pool starts.
_worker_settings: tuple[Alphabet, TextConfig, CheckLimits] | None = None


def _start_worker(alphabet: Alphabet, text_cfg: TextConfig, limits: CheckLimits) -> None:
    global _worker_settings
    _worker_settings = (alphabet, text_cfg, limits)


def _check_chunk(chunk: list[Utterance],
                 settings: tuple[Alphabet, TextConfig, CheckLimits] | None = None) -> list[Problem]:
    """The chunk's problems; `settings` default to the worker process's."""
    alphabet, text_cfg, limits = settings or _worker_settings
    return [problem for utterance in chunk
            for problem in check_utterance(utterance, alphabet, text_cfg, limits)]


def _worker_pool(workers: int, settings: tuple[Alphabet, TextConfig, CheckLimits]
                 ) -> tuple[Executor, Callable[[list[Utterance]], list[Problem]]]:
    """Forked processes where the platform forks (Linux): about a quarter of a check is Python
    (paths, transcripts, reductions), which threads would run one at a time under the GIL.
    Threads elsewhere: decoding runs in libsndfile with the GIL released, so they still
    overlap."""
    if "fork" in multiprocessing.get_all_start_methods():
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_start_worker, initargs=settings), _check_chunk
    return ThreadPoolExecutor(workers), functools.partial(_check_chunk, settings=settings)


def check_utterances(utterances: list[Utterance], alphabet: Alphabet, text_cfg: TextConfig,
                     limits: CheckLimits, workers: int = 1) -> CheckReport:
    """Check every utterance (in `workers` processes), problems in manifest order."""
    settings = (alphabet, text_cfg, limits)
    # Utterances go to the workers in chunks: a task per line adds its overhead to every line.
    chunks = [utterances[start:start + _CHECK_CHUNK]
              for start in range(0, len(utterances), _CHECK_CHUNK)]
    with tqdm(total=len(utterances), desc="checking", unit="utt", leave=False,
              disable=None) as progress:
        def checked(found: list[Problem], chunk: list[Utterance]) -> list[Problem]:
            progress.update(len(chunk))
            return found

        if workers > 1:
            pool, check = _worker_pool(workers, settings)
            with pool:
                results = [checked(found, chunk)
                           for found, chunk in zip(pool.map(check, chunks), chunks)]
        else:
            results = [checked(_check_chunk(chunk, settings), chunk) for chunk in chunks]
    return CheckReport(len(utterances), [problem for found in results for problem in found])


def check_manifest(path: str | Path, cfg: DataCheckConfig) -> CheckReport:
    """Read the manifest at `path` in `cfg.format` and check every utterance.

    Raises ManifestError when the manifest itself cannot be read."""
    utterances = read_manifest(path, cfg.format)
    # A plain TextConfig: each field read of a DictConfig costs ~30 us, and every utterance's
    # transcript reads four (a sixth of data check's time, measured on 20,000 lines).
    text_cfg = OmegaConf.to_object(cfg.text) if OmegaConf.is_config(cfg.text) else cfg.text
    return check_utterances(utterances, Alphabet.from_config(text_cfg), text_cfg,
                            CheckLimits.from_config(cfg), cfg.workers)
