"""The DeepSpeech2 acoustic model, its checkpoints, the CTC loss, the device, the run directory."""
