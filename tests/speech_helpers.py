"""Real speech for tests: espeak-ng speaks a text, resampled to 16 kHz and written with soundfile."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
