"""Loading a KenLM model in Python and scoring sentences with it (the `kenlm` module, from the
`kenlm-ex` or `ufal-kenlm` wheel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from speechprune.lm.files import LanguageModelError


def load_language_model(path: str | Path) -> Any:
    """A `kenlm.Model` of an ARPA or binary file."""
    try:
        import kenlm
    except ImportError as error:
        raise LanguageModelError("scoring with a language model needs the `kenlm` Python module: "
                                 "pip install kenlm-ex") from error
    path = Path(path)
    if not path.is_file():
        raise LanguageModelError(f"{path}: language model not found; build it with "
                                 f"`speechprune lm build output_dir={path.parent}`")
    return kenlm.Model(str(path))


def sentence_log10_probability(model: Any, sentence: str) -> float:
    """log10 P(sentence) under `model`, with sentence start and end markers."""
    return float(model.score(sentence, bos=True, eos=True))


def perplexity(model: Any, sentences: list[str]) -> float:
    """Per-word perplexity of `sentences` (end-of-sentence tokens counted as words)."""
    total_log10 = sum(sentence_log10_probability(model, s) for s in sentences)
    tokens = sum(len(s.split()) + 1 for s in sentences)
    return 10.0 ** (-total_log10 / max(tokens, 1))
