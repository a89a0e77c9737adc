"""The DeepSpeech2 acoustic model."""

from speechprune.model.deepspeech2 import DeepSpeech2, ModelConfigError, validate_model_config

__all__ = ["DeepSpeech2", "ModelConfigError", "validate_model_config"]
