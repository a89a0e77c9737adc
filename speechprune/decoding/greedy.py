"""Greedy (best-path) CTC decoding: the most likely symbol per frame, repeats collapsed,
blanks dropped."""

from __future__ import annotations

import torch

from speechprune.data.text import Alphabet


def best_path_indices(log_probs: torch.Tensor, lengths: torch.Tensor,
                      blank: int = 0) -> list[list[int]]:
    """Collapsed, blank-free symbol indices per utterance.

    log_probs: (batch, time, classes), any float dtype and device; lengths: (batch,) valid
    output frames per utterance (frames past them are ignored).
    """
    best = log_probs.argmax(dim=-1)  # (batch, time)
    time = best.shape[1]
    valid = torch.arange(time, device=best.device)[None, :] < lengths.to(best.device)[:, None]
    # A symbol is emitted where it differs from the previous frame's best symbol: a blank
    # between two equal symbols therefore separates them ("l _ l" -> "ll").
    changed = torch.ones_like(valid)
    changed[:, 1:] = best[:, 1:] != best[:, :-1]
    keep = (valid & changed & (best != blank)).cpu()
    best = best.cpu()
    return [best[b][keep[b]].tolist() for b in range(best.shape[0])]


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, alphabet: Alphabet) -> list[str]:
    """Best-path transcripts: log_probs (batch, time, classes) with the blank at index
    `alphabet.blank`, lengths (batch,) valid frames -> one string per utterance."""
    return [alphabet.decode(indices)
            for indices in best_path_indices(log_probs, lengths, blank=alphabet.blank)]
