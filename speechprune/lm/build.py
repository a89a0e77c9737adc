"""`speechprune lm build`: normalized sentences -> word n-gram LM (ARPA + KenLM binary), its
lexicon, and optionally a character n-gram LM for lexicon-free decoding."""

from __future__ import annotations

import logging
from pathlib import Path

from speechprune.config import LmBuildConfig, TextConfig
from speechprune.corpus.sentence_sources import sentence_prompts
from speechprune.data.manifest import read_manifest
from speechprune.data.text import Alphabet, normalize_text
from speechprune.lm.files import WORD_BOUNDARY, LanguageModelError, LmFiles
from speechprune.lm.kenlm_tools import arpa_to_binary, estimate_arpa

log = logging.getLogger(__name__)


def read_sentences(manifests: list[str], text_files: list[str], text_cfg: TextConfig) -> list[str]:
    """Normalized, non-empty sentences: the transcripts of `manifests` (any format
    read_manifest knows), then the lines of `text_files`. Characters outside the alphabet
    raise TranscriptError naming the file and line (or are dropped, as text_cfg says)."""
    alphabet = Alphabet.from_config(text_cfg)
    sentences = []

    def add(raw: str, where: str) -> None:
        text = normalize_text(raw, text_cfg)
        text = alphabet.decode(alphabet.encode(text, where=where))
        text = " ".join(text.split())
        if text:
            sentences.append(text)

    for manifest in manifests:
        for line, utterance in enumerate(read_manifest(manifest), start=1):
            add(utterance.text, f"{manifest}:{line}")
    for text_file in text_files:
        path = Path(text_file)
        if not path.is_file():
            raise LanguageModelError(f"{path}: text file not found (lm build text_files=[...])")
        with path.open(encoding="utf-8") as lines:
            for line, raw in enumerate(lines, start=1):
                add(raw, f"{path}:{line}")
    return sentences


def spell(word: str) -> list[str]:
    """The decoder tokens of one word: its characters, then the word boundary."""
    return list(word) + [WORD_BOUNDARY]


def character_sentence(sentence: str) -> str:
    """A sentence as the character LM sees it: "to be" -> "t o | b e"."""
    return f" {WORD_BOUNDARY} ".join(" ".join(word) for word in sentence.split())


def write_lexicon(sentences: list[str], path: Path) -> int:
    """One line per distinct word, sorted: "word w o r d |". Returns the number of words."""
    words = sorted({word for sentence in sentences for word in sentence.split()})
    path.write_text("".join(f"{word} {' '.join(spell(word))}\n" for word in words))
    return len(words)


def build_language_model(cfg: LmBuildConfig) -> LmFiles:
    """Build every file of an LM directory (see speechprune.lm.files) from cfg's text."""
    if not cfg.manifests and not cfg.text_files and not cfg.debian_text:
        raise LanguageModelError("lm build: name its text with manifests=[...], text_files=[...] "
                                 "or debian_text=true")
    if not 1 <= cfg.order <= 6 or not 0 <= cfg.char_order <= 6:
        raise LanguageModelError(f"lm build: order ({cfg.order}) must be 1-6 and char_order "
                                 f"({cfg.char_order}) 0-6 (KenLM's compiled maximum is 6)")
    sentences = read_sentences(list(cfg.manifests), list(cfg.text_files), cfg.text)
    if cfg.debian_text:
        # Normalized like the corpora's prompts; sentences the corpus builder would not use
        # (acronyms, characters outside the alphabet) are left out rather than failing.
        debian = [prompt.text for prompt in sentence_prompts(1, 10_000, cfg.text)]
        log.info("added %d sentences of Debian's fortunes and WordNet", len(debian))
        sentences += debian
    if cfg.exclude_manifests:
        held_out = set(read_sentences(list(cfg.exclude_manifests), [], cfg.text))
        kept = [s for s in sentences if s not in held_out]
        log.info("left out %d sentences found in %s", len(sentences) - len(kept),
                 ", ".join(cfg.exclude_manifests))
        sentences = kept
    if not sentences:
        raise LanguageModelError("lm build: the named manifests and text files hold no text")
    files = LmFiles(Path(cfg.output_dir))
    files.directory.mkdir(parents=True, exist_ok=True)
    files.corpus.write_text("".join(s + "\n" for s in sentences))
    words = write_lexicon(sentences, files.lexicon)
    estimate_arpa(files.corpus, files.arpa, cfg.order, cfg.memory, cfg.discount_fallback,
                  cfg.kenlm_bin_dir)
    arpa_to_binary(files.arpa, files.binary, cfg.kenlm_bin_dir)
    if cfg.char_order:
        char_corpus = files.directory / "chars.txt"
        char_corpus.write_text("".join(character_sentence(s) + "\n" for s in sentences))
        estimate_arpa(char_corpus, files.char_arpa, cfg.char_order, cfg.memory,
                      cfg.discount_fallback, cfg.kenlm_bin_dir)
        arpa_to_binary(files.char_arpa, files.char_binary, cfg.kenlm_bin_dir)
        char_corpus.unlink()
    for lexicon in (True, False):  # weights tuned for an older LM do not carry over
        files.decoder_params(lexicon).unlink(missing_ok=True)
    log.info("language model: %d sentences, %d words, %d-gram -> %s", len(sentences), words,
             cfg.order, files.directory)
    return files
