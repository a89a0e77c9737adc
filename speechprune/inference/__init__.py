"""Running a trained model: load any model file (a training checkpoint, a run directory, or a
sparse/int8 export), turn audio into features and transcripts (recognizer.py), and run it over a
data set for its loss and corpus WER/CER (evaluation.py).

Nothing here imports speechprune.training: what training and inference share (checkpoint files,
the CTC loss, the feature pipeline) lives below both, in speechprune.model and speechprune.data.
"""
