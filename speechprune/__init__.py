"""speechprune: DeepSpeech2-style ASR training with threshold pruning during training."""
__version__ = "0.1.0"
