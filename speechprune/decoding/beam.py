"""Choosing a CTC decoder, and beam-search decoding with a KenLM n-gram language model through
torchaudio's `ctc_decoder` (flashlight-text).

A decoder is any callable `(log_probs, lengths) -> list[str]`: log_probs (batch, time, classes)
log-softmax outputs with the blank at index 0, lengths (batch,) valid output frames.

Two beam-search modes:
- lexicon (default): only words listed in <lm>/lexicon.txt are output, scored by the word
  n-gram <lm>/lm.bin; beta is added per word.
- lexicon-free (`decoder.lexicon=false`): any spelling, scored by the character n-gram
  <lm>/chars.bin (or by nothing when `decoder.lm` is empty); beta is added per word boundary.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from speechprune.config import DecoderConfig
from speechprune.data.text import Alphabet
from speechprune.decoding.greedy import greedy_decode
from speechprune.lm.files import WORD_BOUNDARY, LanguageModelError, LmFiles, read_decoder_params

Decoder = Callable[[torch.Tensor, torch.Tensor], list[str]]

BLANK_TOKEN = "<blank>"
UNKNOWN_WORD = "<unk>"
DECODERS = ("greedy", "beam")
FLASHLIGHT_HINT = "pip install flashlight-text==0.0.7"


@dataclass(frozen=True)
class GreedyDecoder:
    """Best-path decoding as a Decoder (needs neither an LM nor flashlight-text)."""

    alphabet: Alphabet
    description: str = "greedy"

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return greedy_decode(log_probs, lengths, self.alphabet)


def build_decoder(cfg: DecoderConfig, alphabet: Alphabet) -> Decoder:
    """The decoder `cfg.name` names: "greedy" (never needs an LM) or "beam"."""
    if cfg.name == "greedy":
        return GreedyDecoder(alphabet)
    if cfg.name == "beam":
        return BeamSearchDecoder(cfg, alphabet)
    raise ValueError(f"decoder={cfg.name!r} is not a decoder; use one of {list(DECODERS)}")


def describe_decoder(decoder: Decoder) -> str:
    """One line saying which decoder this is and with which weights (for logs and summaries)."""
    return getattr(decoder, "description", type(decoder).__name__)


def decoder_tokens(alphabet: Alphabet) -> list[str]:
    """The decoder's name for each output class, in class order: the blank, then the alphabet
    with the space written as the word boundary token."""
    if " " not in alphabet.symbols:
        raise LanguageModelError("beam search needs the space in data.text.alphabet (it "
                                 "separates words)")
    clashes = {BLANK_TOKEN, WORD_BOUNDARY} & set(alphabet.symbols)
    if clashes:
        raise LanguageModelError(f"the alphabet holds {sorted(clashes)}, which beam search "
                                 f"reserves for its own tokens")
    return [BLANK_TOKEN] + [WORD_BOUNDARY if ch == " " else ch for ch in alphabet.symbols]


def resolve_weights(cfg: DecoderConfig) -> tuple[float, float, str]:
    """(alpha, beta, where they came from): the config's values when set, else the tuned ones
    of <lm>/decoder.json (decoder_lexicon_free.json in lexicon-free mode), else the config's
    untuned defaults."""
    tuned = read_decoder_params(cfg.lm, cfg.lexicon) if cfg.lm else None
    alpha = cfg.alpha if cfg.alpha is not None else (tuned["alpha"] if tuned else cfg.untuned_alpha)
    beta = cfg.beta if cfg.beta is not None else (tuned["beta"] if tuned else cfg.untuned_beta)
    if cfg.alpha is not None and cfg.beta is not None:
        source = "config"
    elif tuned:
        source = str(LmFiles(Path(cfg.lm)).decoder_params(cfg.lexicon))
    else:
        source = "untuned defaults"
    return float(alpha), float(beta), source


def _ctc_decoder_factory():
    """torchaudio's ctc_decoder, or LanguageModelError saying how to install flashlight-text."""
    try:
        # torchaudio imports flashlight lazily: import it here to fail early and clearly.
        import flashlight.lib.text.decoder  # noqa: F401
        from torchaudio.models.decoder import ctc_decoder
    except ImportError as error:
        raise LanguageModelError(f"beam search decoding needs flashlight-text: {FLASHLIGHT_HINT}; "
                                 f"decoder=greedy works without it ({error})") from error
    return ctc_decoder


class BeamSearchDecoder:
    """CTC prefix beam search with an optional KenLM language model (see the module doc)."""

    def __init__(self, cfg: DecoderConfig, alphabet: Alphabet) -> None:
        self.alpha, self.beta, self.weights_source = resolve_weights(cfg)
        self.lexicon_mode = bool(cfg.lm) and cfg.lexicon
        tokens = decoder_tokens(alphabet)
        lexicon, lm = None, None
        if cfg.lm:
            files = LmFiles(Path(cfg.lm))
            if self.lexicon_mode:
                files.require(files.binary, files.lexicon)
                lexicon, lm = str(files.lexicon), str(files.binary)
            else:
                files.require(files.char_binary)
                lm = str(files.char_binary)
        ctc_decoder = _ctc_decoder_factory()
        with tempfile.TemporaryDirectory() as scratch:
            # The lexicon-free decoder hands the LM token indices; without an explicit LM
            # dictionary in token order torchaudio builds one in hash order and the LM then
            # scores the wrong characters.
            lm_dict = None
            if lm and not self.lexicon_mode:
                lm_dict = str(Path(scratch) / "tokens.txt")
                Path(lm_dict).write_text("".join(t + "\n" for t in tokens + [UNKNOWN_WORD]))
            self._decoder = self._build(ctc_decoder, cfg, lexicon, tokens, lm, lm_dict)
        mode = "lexicon" if self.lexicon_mode else "lexicon-free"
        self.description = (f"beam (width {cfg.beam_size}, {mode}, LM {cfg.lm or 'none'}, "
                            f"alpha {self.alpha:g}, beta {self.beta:g} from {self.weights_source})")

    def _build(self, ctc_decoder, cfg: DecoderConfig, lexicon, tokens, lm, lm_dict):
        try:
            return ctc_decoder(
                lexicon=lexicon, tokens=tokens, lm=lm, lm_dict=lm_dict, nbest=1,
                beam_size=cfg.beam_size,
                beam_size_token=cfg.beam_size_token or None, beam_threshold=cfg.beam_threshold,
                lm_weight=self.alpha, word_score=self.beta, unk_score=cfg.unk_score,
                # Lexicon-free search has no word score: the bonus goes to word boundaries.
                sil_score=0.0 if self.lexicon_mode else self.beta,
                blank_token=BLANK_TOKEN, sil_token=WORD_BOUNDARY, unk_word=UNKNOWN_WORD)
        except RuntimeError as error:
            if "KenLM is not installed" in str(error):
                raise LanguageModelError(f"flashlight-text was built without KenLM: "
                                         f"{FLASHLIGHT_HINT}") from error
            raise

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Transcripts of log_probs (batch, time, classes) with lengths (batch,) valid frames."""
        emissions = log_probs.detach().float().cpu().contiguous()
        hypotheses = self._decoder(emissions, lengths.detach().cpu().to(torch.int32))
        return [self._text(nbest[0]) if nbest else "" for nbest in hypotheses]

    def _text(self, hypothesis) -> str:
        if self.lexicon_mode:
            return " ".join(hypothesis.words)
        tokens = self._decoder.idxs_to_tokens(hypothesis.tokens)
        text = "".join(" " if t == WORD_BOUNDARY else t for t in tokens if t != BLANK_TOKEN)
        return " ".join(text.split())
