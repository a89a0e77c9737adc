"""Word and character n-gram language models (KenLM) for beam-search decoding: building them
from transcripts, loading and scoring them, and tuning their weight in the decoder."""

from speechprune.lm.files import (LanguageModelError, LmFiles, read_decoder_params,
                                  write_decoder_params)

__all__ = ["LanguageModelError", "LmFiles", "read_decoder_params", "write_decoder_params"]
