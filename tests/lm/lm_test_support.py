"""Shared by the LM and beam-search tests: a small text domain, a real KenLM model built from
it, and CTC emission matrices whose best path spells a chosen, deliberately ambiguous text."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from speechprune.config import DecoderConfig, LmBuildConfig, TextConfig
from speechprune.data.text import Alphabet
from speechprune.lm.build import build_language_model
from speechprune.lm.files import LmFiles

# "cat" follows "the" and precedes "sat"; "cot" exists in the vocabulary, but in other contexts.
DOMAIN_SENTENCES = (["the cat sat on the mat"] * 20
                    + ["a baby sleeps in a cot", "the cot is small", "the dog sat on the rug",
                       "a cat and a dog", "the dog is on the mat"] * 5)

ALPHABET = Alphabet.from_config(TextConfig())


def build_domain_lm(directory: Path, sentences: list[str] = DOMAIN_SENTENCES, **overrides) -> LmFiles:
    """The real `lm build` on `sentences` written to a text file in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    text = directory / "domain.txt"
    text.write_text("\n".join(sentences) + "\n")
    cfg = OmegaConf.structured(LmBuildConfig(manifests=[], text_files=[str(text)],
                                             output_dir=str(directory / "lm"), **overrides))
    return build_language_model(cfg)


def emissions(frames: list[dict[str, float]], alphabet: Alphabet = ALPHABET,
              floor: float = 1e-3) -> torch.Tensor:
    """(1, time, classes) log-probabilities: per entry of `frames` one frame with those
    character probabilities (the rest `floor`), followed by one blank frame."""
    rows = []
    for probabilities in frames:
        row = torch.full((len(alphabet),), floor)
        for character, p in probabilities.items():
            row[alphabet.symbols.index(character) + 1] = p
        blank = torch.full((len(alphabet),), floor)
        blank[alphabet.blank] = 1.0
        rows += [row, blank]
    probs = torch.stack(rows)
    return (probs / probs.sum(-1, keepdim=True)).log()[None]


def spelled(text: str, p: float = 0.9) -> list[dict[str, float]]:
    """Frames that spell `text` clearly."""
    return [{character: p} for character in text]


# Acoustically "the cot sat on the mat" by a small margin: o 0.5 against a 0.4.
AMBIGUOUS = spelled("the c") + [{"o": 0.5, "a": 0.4}] + spelled("t sat on the mat")


def beam_config(**fields) -> DecoderConfig:
    return OmegaConf.structured(DecoderConfig(name="beam", **fields))
