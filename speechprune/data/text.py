"""Transcript normalization and the character alphabet of the CTC output layer."""

from __future__ import annotations

import re
from dataclasses import dataclass

from num2words import num2words

from speechprune.config import TextConfig

BLANK = "_"  # printable stand-in for the CTC blank, index 0; never part of a transcript

_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b")
_YEAR_LIKE = re.compile(r"^(1[1-9]|20)\d\d$")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_SPACES = re.compile(r"\s+")


class TranscriptError(ValueError):
    """A transcript that cannot be mapped to the alphabet; the message names where it is."""


def _spell_number(match: re.Match) -> str:
    token = match.group(0).replace(",", "")
    # A thousands separator marks a count ("1,200 people"), never a year.
    if "," not in match.group(0) and _YEAR_LIKE.match(token):
        return " " + num2words(int(token), to="year") + " "
    return " " + num2words(float(token) if "." in token else int(token)) + " "


def numbers_to_words(text: str) -> str:
    """Write digits out as words: "3rd" -> "third", "1984" -> "nineteen eighty-four"."""
    text = _ORDINAL.sub(lambda m: " " + num2words(int(m.group(1)), to="ordinal") + " ", text)
    return _NUMBER.sub(_spell_number, text)


def normalize_text(text: str, cfg: TextConfig) -> str:
    """Normalize a transcript as configured; characters still outside the alphabet are kept
    (the Alphabet decides whether they are an error or dropped)."""
    if cfg.lowercase:
        text = text.lower()
    if cfg.numbers_to_words:
        text = numbers_to_words(text)
        # num2words writes hyphens and commas ("twenty-one", "one thousand, two hundred").
        text = text.replace("-", " ")
    if cfg.strip_punctuation:
        allowed = set(cfg.alphabet)
        text = "".join(ch if ch in allowed or ch.isspace() or ch.isalnum() else " " for ch in text)
        # An apostrophe only counts inside a word ("don't"), not as a quotation mark.
        if "'" in allowed:
            text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class Alphabet:
    """Output symbols of the acoustic model. Index 0 is the CTC blank."""

    symbols: str  # without the blank
    drop_unknown: bool = False

    @classmethod
    def from_config(cls, cfg: TextConfig) -> "Alphabet":
        if len(set(cfg.alphabet)) != len(cfg.alphabet):
            raise ValueError(f"data.text.alphabet has a repeated character: {cfg.alphabet!r}")
        if cfg.out_of_alphabet not in {"error", "drop"}:
            raise ValueError(
                f"data.text.out_of_alphabet must be 'error' or 'drop', got {cfg.out_of_alphabet!r}"
            )
        return cls(cfg.alphabet, drop_unknown=cfg.out_of_alphabet == "drop")

    def __len__(self) -> int:
        """Number of output classes, the blank included."""
        return len(self.symbols) + 1

    @property
    def blank(self) -> int:
        return 0

    def unknown_characters(self, text: str) -> list[str]:
        return sorted({ch for ch in text if ch not in self.symbols})

    def encode(self, text: str, where: str = "") -> list[int]:
        """Symbol indices (1-based: 0 is the blank) of a normalized transcript.

        `where` ("manifest.jsonl:12") goes into the error raised for unknown characters.
        """
        unknown = self.unknown_characters(text)
        if unknown and not self.drop_unknown:
            place = f"{where}: " if where else ""
            raise TranscriptError(
                f"{place}transcript {text!r} has characters outside the alphabet {unknown}; "
                "add them to data.text.alphabet or set data.text.out_of_alphabet=drop"
            )
        return [self.symbols.index(ch) + 1 for ch in text if ch in self.symbols]

    def decode(self, indices: list[int]) -> str:
        """Text of already collapsed, blank-free indices."""
        return "".join(self.symbols[i - 1] for i in indices if i > 0)


def ctc_min_frames(labels: list[int]) -> int:
    """Fewest output frames a CTC alignment of `labels` needs: one per label, plus one blank
    between each pair of equal neighbours ("ll" in "hello")."""
    repeats = sum(1 for previous, current in zip(labels, labels[1:]) if previous == current)
    return len(labels) + repeats
