"""Sentences for the large-vocabulary corpus, extracted from installed Debian text packages.

`fortunes` (/usr/share/games/fortunes) gives quotations and jokes; `wordnet-base`
(/usr/share/wordnet) gives the example sentences quoted inside its glosses. Only sentences that
a text-to-speech engine reads exactly as their normalized transcript are kept: no acronyms
(read letter by letter), no abbreviations, no tables or code.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from speechprune.config import TextConfig
from speechprune.corpus.prompts import Prompt
from speechprune.data.text import Alphabet, normalize_text

FORTUNES_DIR = Path("/usr/share/games/fortunes")
WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_DATA_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
# Fortune files of pictures or program code rather than prose.
FORTUNE_FILES_SKIPPED = {"art", "ascii-art", "perl", "translate-me"}

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_GLOSS_EXAMPLE = re.compile(r'"([^"]+)"')
# Characters of tables, code, markup and e-mail addresses: a sentence with one is skipped.
_NOT_PROSE = re.compile(r"[|_/\\@<>=#{}\[\]*~^+$%&\t]|\.\.|https?:")
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b|\b(?:[A-Za-z]\.){2,}")
_VOWEL = re.compile(r"[aeiouy]")


class SentenceSourceError(RuntimeError):
    """A text package that is missing or yields too few sentences; names the package."""


def fortune_paragraphs(directory: Path = FORTUNES_DIR) -> Iterator[str]:
    """Each fortune (text between "%" lines) as one line of text, files in name order."""
    if not directory.is_dir():
        raise SentenceSourceError(
            f"{directory} not found; install the Debian package `fortunes` "
            "(`sudo apt-get install fortunes`)"
        )
    for path in sorted(directory.iterdir()):
        if path.suffix or not path.is_file() or path.name in FORTUNE_FILES_SKIPPED:
            continue  # .dat indexes and .u8 links
        text = path.read_text(encoding="utf-8", errors="replace")
        for fortune in re.split(r"^%\s*$", text, flags=re.MULTILINE):
            # An attribution line ("-- Mark Twain") is not part of the sentence.
            lines = [line for line in fortune.splitlines() if not line.strip().startswith("--")]
            if any("\t" in line or "  " in line.strip() for line in lines):
                continue  # tables and verse laid out with spaces
            yield " ".join(line.strip() for line in lines if line.strip())


def wordnet_examples(directory: Path = WORDNET_DIR) -> Iterator[str]:
    """The quoted example sentences of WordNet's glosses, files and lines in order."""
    if not (directory / WORDNET_DATA_FILES[0]).is_file():
        raise SentenceSourceError(
            f"{directory}/{WORDNET_DATA_FILES[0]} not found; install the Debian package "
            "`wordnet-base` (`sudo apt-get install wordnet-base`)"
        )
    for name in WORDNET_DATA_FILES:
        with (directory / name).open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                gloss = line.split("|", 1)[1]
                yield from _GLOSS_EXAMPLE.findall(gloss)


def split_sentences(paragraph: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(paragraph) if part.strip()]


def clean_prompt(sentence: str, text_cfg: TextConfig, alphabet: Alphabet,
                 min_words: int, max_words: int) -> Prompt | None:
    """The normalized prompt of a raw sentence, or None when the engines would not read it as
    its transcript (acronyms, abbreviations, code) or its length is outside the bounds."""
    if _NOT_PROSE.search(sentence) or _ACRONYM.search(sentence):
        return None
    text = normalize_text(sentence, text_cfg)
    words = text.split()
    if not min_words <= len(words) <= max_words or alphabet.unknown_characters(text):
        return None
    # Words without a vowel are abbreviations ("mr", "st") or letters the engines spell out.
    if any(not _VOWEL.search(word) and word not in {"a", "i"} for word in words):
        return None
    return Prompt(text, text)


def sentence_prompts(min_words: int, max_words: int, text_cfg: TextConfig | None = None,
                     raw_sentences: Iterable[str] | None = None) -> list[Prompt]:
    """Distinct normalized prompts from fortunes and WordNet, in source order.

    `raw_sentences` replaces the Debian sources (for other text collections).
    """
    text_cfg = text_cfg or TextConfig()
    alphabet = Alphabet.from_config(text_cfg)
    if raw_sentences is None:
        raw_sentences = debian_sentences()
    prompts: dict[str, Prompt] = {}
    for sentence in raw_sentences:
        prompt = clean_prompt(sentence, text_cfg, alphabet, min_words, max_words)
        if prompt is not None:
            prompts.setdefault(prompt.text, prompt)
    return list(prompts.values())


@lru_cache(maxsize=1)
def debian_sentences() -> tuple[str, ...]:
    """Raw sentences of fortunes then WordNet, read once per process."""
    fortunes = (s for paragraph in fortune_paragraphs() for s in split_sentences(paragraph))
    return (*fortunes, *wordnet_examples())
