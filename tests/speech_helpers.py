"""Real speech for tests: espeak-ng speaks a text, resampled to 16 kHz and written with soundfile."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from speechprune.data.manifest import Utterance

RATE = 16000


def write_speech(path: Path, text: str) -> Utterance:
    """Speak `text` into the 16 kHz WAV `path`; the utterance's source is "<file name>:1"."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
    samples, rate = sf.read(str(raw), dtype="float32")
    samples = torchaudio.functional.resample(torch.from_numpy(samples), rate, RATE).numpy()
    sf.write(str(path), samples, RATE)
    return Utterance(str(path), len(samples) / RATE, text, f"{path.name}:1")


def write_faulty_copies(source: Path, folder: Path) -> dict[str, Path]:
    """Copies of the speech in `source` that need care, written into `folder` by kind:
    "stereo" (the same speech in both channels), "8k" (resampled to 8 kHz), "non_finite"
    (every 1000th sample NaN, in a float WAV), "empty" (zero samples) and "unreadable" (a WAV
    header followed by garbage)."""
    speech, rate = sf.read(str(source), dtype="float32")
    paths = {kind: folder / f"{kind}.wav" for kind in
             ("stereo", "8k", "non_finite", "empty", "unreadable")}
    sf.write(str(paths["stereo"]), np.stack([speech, speech], axis=1), rate)
    slow = torchaudio.functional.resample(torch.from_numpy(speech), rate, 8000).numpy()
    sf.write(str(paths["8k"]), slow, 8000)
    poisoned = speech.copy()
    poisoned[::1000] = np.nan
    sf.write(str(paths["non_finite"]), poisoned, rate, subtype="FLOAT")
    sf.write(str(paths["empty"]), np.zeros(0, dtype=np.float32), rate)
    paths["unreadable"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    return paths
