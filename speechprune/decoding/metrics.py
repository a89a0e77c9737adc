"""Word and character error rates, aggregated from summed edit counts (never averaged per
utterance or per batch), with the edit distances computed by jiwer.

Text is compared after jiwer's default transforms: words are split on whitespace (leading,
trailing and repeated spaces ignored); characters include the spaces between words.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import jiwer
import torch


def word_edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) at the word level."""
    out = jiwer.process_words(reference, hypothesis)
    return _edits_and_reference_size(out)


def char_edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference characters), spaces included."""
    out = jiwer.process_characters(reference, hypothesis)
    return _edits_and_reference_size(out)


def _edits_and_reference_size(out: jiwer.WordOutput | jiwer.CharacterOutput) -> tuple[int, int]:
    edits = out.substitutions + out.deletions + out.insertions
    return edits, out.substitutions + out.deletions + out.hits  # every reference unit once


def error_rate(edits: int, reference_size: int) -> float:
    """Edits per reference unit in percent. With an empty reference each inserted unit counts
    100% (denominator 1): an empty hypothesis for it scores 0, never a division by zero."""
    return 100.0 * edits / max(reference_size, 1)


@dataclass
class ErrorCounts:
    """Summed edit counts of a corpus (or of one rank's share of it)."""

    word_edits: int = 0
    words: int = 0  # reference words
    char_edits: int = 0
    chars: int = 0  # reference characters, spaces included

    def add(self, reference: str, hypothesis: str) -> None:
        """Count one utterance."""
        edits, words = word_edits(reference, hypothesis)
        self.word_edits += edits
        self.words += words
        edits, chars = char_edits(reference, hypothesis)
        self.char_edits += edits
        self.chars += chars

    def merge(self, other: "ErrorCounts") -> "ErrorCounts":
        """The counts of both corpora together (a new object)."""
        return ErrorCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(4,) int64 [word_edits, words, char_edits, chars], for torch.distributed.all_reduce."""
        return torch.tensor([getattr(self, f.name) for f in fields(self)], dtype=torch.int64,
                            device=device)

    @classmethod
    def from_tensor(cls, counts: torch.Tensor) -> "ErrorCounts":
        """Inverse of to_tensor (e.g. after an all_reduce with SUM)."""
        return cls(*(int(v) for v in counts.tolist()))

    @property
    def wer(self) -> float:
        """Corpus word error rate in percent."""
        return error_rate(self.word_edits, self.words)

    @property
    def cer(self) -> float:
        """Corpus character error rate in percent."""
        return error_rate(self.char_edits, self.chars)


def utterance_errors(reference: str, hypothesis: str) -> dict:
    """One utterance's counts and rates (percent), for per-utterance reports:
    {word_edits, words, wer, char_edits, chars, cer}."""
    counts = ErrorCounts()
    counts.add(reference, hypothesis)
    return {"word_edits": counts.word_edits, "words": counts.words, "wer": counts.wer,
            "char_edits": counts.char_edits, "chars": counts.chars, "cer": counts.cer}
