"""Reading audio files: soundfile for I/O, librosa for resampling. Always mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


# What can be wrong with an audio file, in the words of `speechprune data check`
# (speechprune.data.check.PROBLEM_KINDS) where it has one.
AUDIO_PROBLEMS = (
    "missing",  # no such file
    "unreadable",  # not audio soundfile can decode, or cut short
    "empty",  # zero samples
    "non_finite",  # a NaN or infinite sample (float WAVs can hold them): it would poison training
    "beyond_end",  # a span (offset + duration) that ends past the end of its file
)

# How far (seconds) a span may end past the end of its file and still be read (up to the end):
# manifests round durations, and Lhotse accepts this much by default
# (lhotse.audio.set_audio_duration_mismatch_tolerance).
SPAN_END_TOLERANCE_S = 0.025


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the problem, `kind` says
    which problem (one of AUDIO_PROBLEMS)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):  # keeps `kind` across processes (DataLoader workers)
        return type(self), (str(self), self.kind)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds, read from the file header only."""
    # soundfile reports a missing file as a generic "System error": name it plainly.
    if not Path(path).is_file():
        raise AudioError(f"{path}: audio file not found", "missing")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: unreadable audio ({error})", "unreadable") from None
    return info.frames / info.samplerate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """float32 mono (samples,) at `from_rate` Hz -> float32 (round(samples * to_rate /
    from_rate),) at `to_rate` Hz: soxr's high-quality resampler, the one every part of the
    project uses (loading audio, speed perturbation, the corpus build). It is what librosa's
    default resampler calls, without librosa's slow import."""
    if from_rate == to_rate:
        return np.array(samples, dtype=np.float32)
    return soxr.resample(np.ascontiguousarray(samples, dtype=np.float32), from_rate, to_rate)


def span_frames(offset_s: float, duration_s: float, rate: int) -> tuple[int, int]:
    """(start, stop) sample indices at `rate` Hz of the span [offset_s, offset_s + duration_s)
    seconds, each rounded to the nearest sample as Lhotse rounds them."""
    start = round(offset_s * rate)
    return start, start + round(duration_s * rate)


def describe_audio(path: str | Path, offset_s: float | None = None,
                   duration_s: float | None = None) -> str:
    """How messages name a file, or a span of one: "a.wav" or "a.wav [1.250 s + 2.000 s]"."""
    return str(path) if offset_s is None else f"{path} [{offset_s:.3f} s + {duration_s:.3f} s]"


def load_audio(path: str | Path, sample_rate: int = 16000, offset_s: float | None = None,
               duration_s: float | None = None) -> np.ndarray:
    """Samples of `path` as float32 mono at `sample_rate` Hz, shape (samples,): the whole
    file, or with `offset_s` the span of `duration_s` seconds from there (only its frames are
    decoded).

    Stereo is downmixed by averaging the channels; other rates are resampled (`resample`).
    Raises AudioError for a missing, unreadable or empty file and for NaN or infinite samples,
    and for a span that ends more than SPAN_END_TOLERANCE_S past the end of the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found", "missing")
    what = describe_audio(path, offset_s, duration_s)
    try:
        if offset_s is None:
            samples, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
        else:
            samples, file_rate = _read_span(path, offset_s, duration_s)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{what}: unreadable or truncated audio ({error})", "unreadable") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{what}: the audio holds no samples", "empty")
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise AudioError(f"{what}: the audio holds {bad} non-finite samples (NaN or infinite); "
                         "re-encode the file from its source", "non_finite")
    samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if file_rate != sample_rate:
        samples = resample(samples, file_rate, sample_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)


def span_within(path: str | Path, offset_s: float, duration_s: float, frames: int,
                rate: int) -> tuple[int, int]:
    """(start, stop) samples of a span of the file `path` of `frames` samples at `rate` Hz,
    both clipped to the file's end. Raises AudioError ("beyond_end") for a negative offset or
    duration, or a span ending more than SPAN_END_TOLERANCE_S past the end."""
    start, stop = span_frames(offset_s, duration_s, rate)
    if start < 0 or duration_s < 0:
        raise AudioError(f"{path}: a span needs offset >= 0 and duration >= 0, got "
                         f"{offset_s:g} s and {duration_s:g} s", "beyond_end")
    if stop > frames + round(SPAN_END_TOLERANCE_S * rate):
        raise AudioError(
            f"{path}: the span {offset_s:.3f}-{offset_s + duration_s:.3f} s ends past the end "
            f"of the {frames / rate:.3f} s file; fix its offset or duration", "beyond_end")
    return min(start, frames), min(stop, frames)


def _read_span(path: Path, offset_s: float, duration_s: float) -> tuple[np.ndarray, int]:
    """(float32 (frames, channels) samples, file rate) of a span of `path`, seeking to it."""
    with sf.SoundFile(str(path)) as audio:
        start, stop = span_within(path, offset_s, duration_s, audio.frames, audio.samplerate)
        audio.seek(start)
        wanted = stop - start
        samples = audio.read(wanted, dtype="float32", always_2d=True)
        if len(samples) < wanted:  # libsndfile stopped decoding early
            raise AudioError(f"{path}: decoding stops {len(samples)} frames into the span "
                             f"of {wanted} frames", "unreadable")
        return samples, audio.samplerate
