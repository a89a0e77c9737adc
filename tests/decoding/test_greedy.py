"""Greedy CTC decoding on hand-made log-probability matrices."""

from __future__ import annotations

import pytest
import torch

from speechprune.data.text import Alphabet
from speechprune.decoding import best_path_indices, greedy_decode

ALPHABET = Alphabet("abcdefghijklmnopqrstuvwxyz' ")


def frames(path: str) -> list[int]:
    """Class per frame from a string where '_' is the blank: "h_e" -> [8, 0, 5]."""
    return [0 if ch == "_" else ALPHABET.symbols.index(ch) + 1 for ch in path]


def log_probs_for(paths: list[str], pad_with: str = "z") -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, time, classes) log-probabilities whose best class per frame follows `paths`;
    shorter paths are padded with frames of `pad_with`, which decoding must ignore. The
    runner-up class is close, so only the argmax decides."""
    time = max(len(p) for p in paths)
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(len(paths), time, len(ALPHABET), generator=generator)
    for b, path in enumerate(paths):
        for t, cls in enumerate(frames(path + pad_with * (time - len(path)))):
            scores[b, t, cls] = scores[b, t].max() + 0.01
    lengths = torch.tensor([len(p) for p in paths])
    return scores.log_softmax(-1), lengths


@pytest.mark.parametrize("path,text", [
    ("hheel_llo", "hello"),          # repeats collapse, a blank keeps the double l
    ("__a__", "a"),                  # leading and trailing blanks
    ("aaaa", "a"),                   # one long repeat
    ("a_a_a", "aaa"),                # blanks separate equal symbols
    ("_____", ""),                   # only blanks
    ("ab  _ cd", "ab  cd"),          # a blank between spaces keeps both
    ("it''s", "it's"),
])
def test_greedy_decode_collapses_repeats_and_drops_blanks(path, text):
    log_probs, lengths = log_probs_for([path])
    assert greedy_decode(log_probs, lengths, ALPHABET) == [text]


def test_frames_past_each_length_are_ignored():
    log_probs, lengths = log_probs_for(["ca_at", "d_o", "g"], pad_with="x")
    assert log_probs.shape[1] == 5
    assert greedy_decode(log_probs, lengths, ALPHABET) == ["caat", "do", "g"]


def test_a_repeat_across_the_length_boundary_is_not_emitted():
    # The valid frames end in "a"; the padding continues with "b": nothing of it may appear.
    log_probs, lengths = log_probs_for(["_a", "abbb"], pad_with="b")
    assert greedy_decode(log_probs, lengths, ALPHABET) == ["a", "ab"]


def test_zero_length_gives_an_empty_transcript():
    log_probs, _ = log_probs_for(["abc", "abc"])
    assert greedy_decode(log_probs, torch.tensor([3, 0]), ALPHABET) == ["abc", ""]


def test_best_path_indices_are_one_based_symbols_without_blanks():
    log_probs, lengths = log_probs_for(["bb_a_"])
    assert best_path_indices(log_probs, lengths) == [[2, 1]]


def test_decoding_works_on_half_precision_scores():
    log_probs, lengths = log_probs_for(["hh_i", "o_k"])
    assert greedy_decode(log_probs.to(torch.bfloat16), lengths, ALPHABET) == ["hi", "ok"]
