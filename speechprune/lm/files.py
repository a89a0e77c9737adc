"""The layout of a language-model directory, and the tuned decoder weights stored in it.

    <dir>/corpus.txt     normalized sentences the LM was estimated on, one per line
    <dir>/lm.arpa        word n-gram LM (ARPA text)
    <dir>/lm.bin         the same in KenLM's binary form (what the decoder loads)
    <dir>/lexicon.txt    one word per line with its spelling: "word w o r d |"
    <dir>/chars.arpa     character n-gram LM of the lexicon-free decoder (optional)
    <dir>/chars.bin
    <dir>/decoder.json   alpha/beta found by `speechprune lm tune` for the lexicon decoder
    <dir>/decoder_lexicon_free.json   the same for the lexicon-free decoder (its own scale)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Token that stands for the space between words in the lexicon, the character LM and the
# beam-search decoder (flashlight's "silence" token).
WORD_BOUNDARY = "|"
DECODER_PARAMS = "decoder.json"
LEXICON_FREE_DECODER_PARAMS = "decoder_lexicon_free.json"


class LanguageModelError(RuntimeError):
    """A language model, a KenLM tool or a decoding package is missing or broken; the message
    says how to get it."""


@dataclass(frozen=True)
class LmFiles:
    directory: Path

    @property
    def corpus(self) -> Path:
        return self.directory / "corpus.txt"

    @property
    def arpa(self) -> Path:
        return self.directory / "lm.arpa"

    @property
    def binary(self) -> Path:
        return self.directory / "lm.bin"

    @property
    def lexicon(self) -> Path:
        return self.directory / "lexicon.txt"

    @property
    def char_arpa(self) -> Path:
        return self.directory / "chars.arpa"

    @property
    def char_binary(self) -> Path:
        return self.directory / "chars.bin"

    def decoder_params(self, lexicon: bool = True) -> Path:
        """Tuned weights of the lexicon (or lexicon-free) decoder: the two modes score with
        different LMs (words vs characters), so their weights differ."""
        return self.directory / (DECODER_PARAMS if lexicon else LEXICON_FREE_DECODER_PARAMS)

    def require(self, *paths: Path) -> None:
        """Raise LanguageModelError naming the first of `paths` that does not exist."""
        for path in paths:
            if not path.is_file():
                raise LanguageModelError(
                    f"{path} does not exist: build the language model with "
                    f"`speechprune lm build output_dir={self.directory}` (see `make kenlm` for "
                    f"the KenLM tools it needs)")


def write_decoder_params(directory: str | Path, alpha: float, beta: float, lexicon: bool = True,
                         **details) -> Path:
    """Store tuned weights (and how they were found) as <directory>/decoder.json (lexicon
    decoder) or decoder_lexicon_free.json."""
    path = LmFiles(Path(directory)).decoder_params(lexicon)
    path.write_text(json.dumps({"alpha": alpha, "beta": beta, **details}, indent=2) + "\n")
    return path


def read_decoder_params(directory: str | Path, lexicon: bool = True) -> dict | None:
    """The tuned {"alpha", "beta", ...} of an LM directory for the lexicon (or lexicon-free)
    decoder, or None when it was never tuned."""
    path = LmFiles(Path(directory)).decoder_params(lexicon)
    if not path.is_file():
        return None
    try:
        params = json.loads(path.read_text())
        return {**params, "alpha": float(params["alpha"]), "beta": float(params["beta"])}
    except (ValueError, KeyError, TypeError) as error:
        raise LanguageModelError(f"{path}: not a decoder parameter file ({error}); delete it "
                                 f"or run `speechprune lm tune` again") from error
