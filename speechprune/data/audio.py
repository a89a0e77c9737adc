"""Reading audio files: soundfile for I/O, librosa for resampling. Always mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file and the problem."""


def audio_duration(path: str | Path) -> float:
    """Duration in seconds, read from the file header only."""
    # soundfile reports a missing file as a generic "System error": name it plainly.
    if not Path(path).is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: unreadable audio ({error})") from None
    return info.frames / info.samplerate


def load_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Samples of `path` as float32 mono at `sample_rate` Hz, shape (samples,).

    Stereo is downmixed by averaging the channels; other rates are resampled with librosa.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        samples, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: unreadable or truncated audio ({error})") from None
    samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if file_rate != sample_rate:
        import librosa  # imported here: it is slow to import and most corpora need no resampling

        samples = librosa.resample(samples, orig_sr=file_rate, target_sr=sample_rate)
    return np.ascontiguousarray(samples, dtype=np.float32)
