"""Building the offline default corpora: voices, sentence sources, synthesis, splits, the build."""
