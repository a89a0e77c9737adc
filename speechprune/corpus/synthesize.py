"""Running the text-to-speech engines: one utterance (espeak-ng, flite) or a batch (festival).

Each function returns the engine's raw output as mono float32 (samples,) and its sample rate;
`synthesize_job` turns planned utterances into finished FLAC files.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from speechprune.atomic_write import atomic_path
from speechprune.config import CorpusConfig
from speechprune.corpus.plan import PlannedUtterance
from speechprune.corpus.postprocess import finish_audio
from speechprune.corpus.voices import ESPEAK, FESTIVAL, FLITE, NATURAL_VOICES

# espeak-ng's pitch is 0..99 around a default of 50; about 4 units make a semitone.
ESPEAK_DEFAULT_PITCH, ESPEAK_PITCH_PER_SEMITONE = 50.0, 4.0
# Festival's diphone intonation model needs a spread as well as a target mean (its defaults).
FESTIVAL_F0_STD_HZ, FESTIVAL_MODEL_F0_MEAN_HZ, FESTIVAL_MODEL_F0_STD_HZ = 14.0, 170.0, 34.0
ENGINE_TIMEOUT_S = 600  # a whole festival batch; a hung engine must not hang the build

_BASE_F0 = {voice.id: voice.base_f0_hz for voice in NATURAL_VOICES}


class SynthesisError(RuntimeError):
    """An engine failed on an utterance; the message names the voice, the text and the output."""


def _f0_target(engine: str, voice: str, pitch_semitones: float) -> float:
    """Intonation target mean (Hz) of a natural voice shifted by `pitch_semitones` (0: none)."""
    base = _BASE_F0.get(f"{engine}:{voice}", 0.0)
    return base * 2 ** (pitch_semitones / 12) if base else 0.0


def _run(command: list[str], what: str, stdin: str | None = None) -> None:
    try:
        result = subprocess.run(command, input=stdin, capture_output=True, text=True,
                                timeout=ENGINE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SynthesisError(
            f"{what}: {command[0]} gave no result in {ENGINE_TIMEOUT_S} s") from None
    if result.returncode != 0:
        raise SynthesisError(f"{what}: {command[0]} failed (exit {result.returncode}): "
                             f"{result.stderr.strip()[-500:]}")


def _read_wav(path: Path, what: str) -> tuple[np.ndarray, int]:
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise SynthesisError(f"{what}: the engine wrote no readable audio ({error})") from None
    if samples.shape[0] == 0:
        raise SynthesisError(f"{what}: the engine wrote empty audio")
    return samples.mean(axis=1), rate


def synthesize_espeak(utterance: PlannedUtterance, cfg: CorpusConfig,
                      workdir: Path) -> tuple[np.ndarray, int]:
    """espeak-ng output (22.05 kHz) for one utterance."""
    path = workdir / f"{utterance.id}.wav"
    pitch = ESPEAK_DEFAULT_PITCH + ESPEAK_PITCH_PER_SEMITONE * utterance.pitch_semitones
    command = ["espeak-ng", "-v", utterance.voice,
               "-s", str(round(cfg.espeak_words_per_minute * utterance.rate)),
               "-p", str(round(min(99.0, max(0.0, pitch)))), "-w", str(path), utterance.spoken]
    _run(command, _describe(utterance))
    return _read_wav(path, _describe(utterance))


def synthesize_flite(utterance: PlannedUtterance, cfg: CorpusConfig,
                     workdir: Path) -> tuple[np.ndarray, int]:
    """flite output (16 kHz) for one utterance."""
    path = workdir / f"{utterance.id}.wav"
    command = ["flite", "-voice", utterance.voice, "-t", utterance.spoken, "-o", str(path),
               "--setf", f"duration_stretch={cfg.flite_duration_stretch / utterance.rate:.3f}"]
    f0 = _f0_target(FLITE, utterance.voice, utterance.pitch_semitones)
    if f0:
        command += ["--setf", f"int_f0_target_mean={f0:.1f}"]
    _run(command, _describe(utterance))
    return _read_wav(path, _describe(utterance))


def festival_script(utterances: list[PlannedUtterance], cfg: CorpusConfig,
                    workdir: Path) -> str:
    """A festival scheme program that synthesizes every utterance of one voice into
    `workdir/<id>.wav`: one process for the batch instead of one `text2wave` per sentence."""
    voices = {utterance.voice for utterance in utterances}
    if len(voices) != 1:
        raise ValueError(f"a festival batch takes one voice, got {sorted(voices)}")
    lines = [f"(voice_{voices.pop()})"]
    for utterance in utterances:
        stretch = cfg.festival_duration_stretch / utterance.rate
        lines.append(f"(Parameter.set 'Duration_Stretch {stretch:.3f})")
        f0 = _f0_target(FESTIVAL, utterance.voice, utterance.pitch_semitones)
        if f0:
            lines.append(
                f"(set! int_lr_params '((target_f0_mean {f0:.1f}) (target_f0_std "
                f"{FESTIVAL_F0_STD_HZ}) (model_f0_mean {FESTIVAL_MODEL_F0_MEAN_HZ}) "
                f"(model_f0_std {FESTIVAL_MODEL_F0_STD_HZ})))")
        text = utterance.spoken.replace("\\", " ").replace('"', " ")
        path = str(workdir / f"{utterance.id}.wav")
        lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{path}" \'riff)')
    return "\n".join(lines) + "\n"


def synthesize_festival(utterances: list[PlannedUtterance], cfg: CorpusConfig,
                        workdir: Path) -> list[tuple[np.ndarray, int]]:
    """festival output (16 or 32 kHz) for a batch of utterances of one voice, in order."""
    script = workdir / "batch.scm"
    script.write_text(festival_script(utterances, cfg, workdir), encoding="utf-8")
    _run(["festival", "-b", str(script)], f"festival batch of {len(utterances)} "
         f"({_describe(utterances[0])} ...)")
    return [_read_wav(workdir / f"{u.id}.wav", _describe(u)) for u in utterances]


def write_flac(samples: np.ndarray, sample_rate: int, path: Path) -> None:
    """Write 16-bit mono FLAC atomically: a temporary file renamed into place, so an
    interrupted build never leaves a truncated file where a finished one is expected."""
    with atomic_path(path) as temporary:
        sf.write(str(temporary), samples, sample_rate, format="FLAC", subtype="PCM_16")


def synthesize_job(utterances: list[PlannedUtterance], output_dir: str,
                   cfg: CorpusConfig) -> list[tuple[str, float]]:
    """Synthesize, finish and write each utterance (one engine; festival: one voice) under
    `output_dir`. Returns (utterance id, seconds of audio written) in order."""
    done = []
    with tempfile.TemporaryDirectory(prefix="speechprune-tts-") as work:
        workdir = Path(work)
        if utterances[0].engine == FESTIVAL:
            raw = synthesize_festival(utterances, cfg, workdir)
        else:
            engine = {ESPEAK: synthesize_espeak, FLITE: synthesize_flite}[utterances[0].engine]
            raw = [engine(utterance, cfg, workdir) for utterance in utterances]
        for utterance, (samples, rate) in zip(utterances, raw):
            finished = finish_audio(samples, rate, cfg.sample_rate, cfg.trim_threshold_db,
                                    cfg.keep_silence_ms / 1000, cfg.peak_level)
            write_flac(finished, cfg.sample_rate, Path(output_dir) / utterance.audio)
            done.append((utterance.id, len(finished) / cfg.sample_rate))
    return done


def _describe(utterance: PlannedUtterance) -> str:
    return f"utterance {utterance.id} ({utterance.engine} voice {utterance.voice!r}, " \
           f"text {utterance.spoken!r})"
