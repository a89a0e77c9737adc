"""Word and character n-gram language models (KenLM) for beam-search decoding: building them
from transcripts, and the files of an LM directory (the beam decoder loads them). Tuning their
weight in the beam decoder is speechprune.decoding.tuning (it decodes, so it sits above both)."""

from speechprune.lm.files import (LanguageModelError, LmFiles, read_decoder_params,
                                  write_decoder_params)

__all__ = ["LanguageModelError", "LmFiles", "read_decoder_params", "write_decoder_params"]
