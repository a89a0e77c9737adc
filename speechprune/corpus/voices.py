"""The voice catalogue: which text-to-speech voices exist and which speaker each one is.

A *speaker* is a person (or an espeak-ng accent x variant pair); a *voice* is one engine's
rendering of a speaker. Flite's `kal16` and festival's `kal_diphone` are the same speaker `kal`,
so both land in the same split.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from speechprune.config import CorpusConfig

ESPEAK, FLITE, FESTIVAL = "espeak", "flite", "festival"

# Debian package that provides each engine binary, for the error message when one is missing.
ENGINE_PACKAGES = {ESPEAK: "espeak-ng", FLITE: "flite", FESTIVAL: "festival"}
ENGINE_BINARIES = {ESPEAK: "espeak-ng", FLITE: "flite", FESTIVAL: "festival"}
FESTIVAL_VOICE_ROOT = Path("/usr/share/festival/voices")


class VoiceError(RuntimeError):
    """A voice that cannot be used; the message names the Debian package to install."""


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak", "flite" or "festival"
    name: str  # the engine's own voice name: "en-us+m3", "kal16", "kal_diphone"
    speaker: str  # speaker id shared by every voice of the same person
    natural: bool  # flite/festival (recorded-speech voices) rather than formant synthesis
    base_f0_hz: float = 0.0  # intonation target mean at pitch shift 0 (0: engine default)
    package: str = ""  # Debian package holding the voice (festival voices)

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"


# The natural voices in Debian main; only these flite voices are clean enough to train on
# (kal is 8 kHz, awb_time speaks only times). Which speakers train and which are kept for the
# unseen-voices split is the config's choice (corpus.unseen_natural_speakers).
NATURAL_VOICES = (
    Voice(FLITE, "kal16", "kal", True, base_f0_hz=110.0),
    Voice(FLITE, "rms", "rms", True, base_f0_hz=110.0),
    Voice(FLITE, "awb", "awb", True, base_f0_hz=110.0),
    Voice(FLITE, "slt", "slt", True, base_f0_hz=170.0),
    Voice(FESTIVAL, "kal_diphone", "kal", True, base_f0_hz=105.0, package="festvox-kallpc16k"),
    Voice(FESTIVAL, "ked_diphone", "ked", True, base_f0_hz=105.0, package="festvox-kdlpc16k"),
    # The HTS voice takes no intonation target: its pitch comes from its own models.
    Voice(FESTIVAL, "cmu_us_slt_arctic_hts", "slt", True, package="festvox-us-slt-hts"),
)


def _espeak_voice(accent: str, variant: str) -> Voice:
    return Voice(ESPEAK, f"{accent}+{variant}", f"espeak-{accent}-{variant}", False)


def voice_catalogue(cfg: CorpusConfig) -> list[Voice]:
    """Every voice train, dev and test may use, natural voices first, in a fixed order: the
    natural voices of speakers not kept unseen, and one espeak-ng voice (and speaker) per
    configured accent x variant pair."""
    check_unseen_settings(cfg)
    natural = [v for v in NATURAL_VOICES if v.speaker not in cfg.unseen_natural_speakers]
    return natural + [_espeak_voice(accent, variant) for accent in cfg.espeak_accents
                      for variant in cfg.espeak_variants]


def unseen_voice_catalogue(cfg: CorpusConfig) -> list[Voice]:
    """The voices of the unseen-voices split, which no other split uses: the natural speakers
    kept unseen, and every espeak-ng accent x variant pair of which the accent or the variant
    (or both) is kept unseen, so each such voice differs from all training voices."""
    check_unseen_settings(cfg)
    natural = [v for v in NATURAL_VOICES if v.speaker in cfg.unseen_natural_speakers]
    accents = list(cfg.espeak_accents) + list(cfg.unseen_espeak_accents)
    variants = list(cfg.espeak_variants) + list(cfg.unseen_espeak_variants)
    return natural + [_espeak_voice(accent, variant) for accent in accents for variant in variants
                      if accent in cfg.unseen_espeak_accents
                      or variant in cfg.unseen_espeak_variants]


def check_unseen_settings(cfg: CorpusConfig) -> None:
    """VoiceError naming the key when the unseen voices are unknown or also train."""
    known = {voice.speaker for voice in NATURAL_VOICES}
    unknown = sorted(set(cfg.unseen_natural_speakers) - known)
    if unknown:
        raise VoiceError(f"corpus.unseen_natural_speakers: unknown speakers {unknown}; the "
                         f"natural speakers are {sorted(known)}")
    for kind in ("accents", "variants"):
        both = sorted(set(getattr(cfg, f"espeak_{kind}"))
                      & set(getattr(cfg, f"unseen_espeak_{kind}")))
        if both:
            raise VoiceError(f"corpus.unseen_espeak_{kind} and corpus.espeak_{kind} share "
                             f"{both}; an unseen voice must not also train")


def voices_by_speaker(voices: list[Voice]) -> dict[str, list[Voice]]:
    """Speaker id -> that speaker's voices, in catalogue order."""
    speakers: dict[str, list[Voice]] = {}
    for voice in voices:
        speakers.setdefault(voice.speaker, []).append(voice)
    return speakers


def check_engines_installed(voices: list[Voice]) -> None:
    """Raise VoiceError naming the Debian package when an engine a voice needs is missing."""
    for engine in sorted({voice.engine for voice in voices}):
        if shutil.which(ENGINE_BINARIES[engine]) is None:
            raise VoiceError(
                f"text-to-speech engine {ENGINE_BINARIES[engine]!r} not found; install it with "
                f"`sudo apt-get install {ENGINE_PACKAGES[engine]}` (or run `make system-deps`)"
            )
    for voice in voices:
        if voice.engine == FESTIVAL and not any(FESTIVAL_VOICE_ROOT.glob(f"*/{voice.name}")):
            raise VoiceError(
                f"festival voice {voice.name!r} not found under {FESTIVAL_VOICE_ROOT}; install it "
                f"with `sudo apt-get install {voice.package}` (or run `make system-deps`)"
            )
