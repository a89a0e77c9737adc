"""Turning acoustic-model outputs into text, and scoring the text (WER/CER)."""

from speechprune.decoding.greedy import best_path_indices, greedy_decode
from speechprune.decoding.metrics import ErrorCounts, utterance_errors

__all__ = ["ErrorCounts", "best_path_indices", "greedy_decode", "utterance_errors"]
