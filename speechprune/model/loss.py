"""The CTC objective, normalized per utterance."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ctc_loss(log_probs: torch.Tensor, output_lengths: torch.Tensor, targets: torch.Tensor,
             target_lengths: torch.Tensor, blank: int = 0) -> torch.Tensor:
    """Mean over the batch of each utterance's summed CTC loss (nats per utterance).

    log_probs: (batch, time, classes) log-softmax outputs; targets: (batch, max_label) padded.
    Computed in float32: half precision CTC overflows. An utterance whose labels cannot be
    aligned gives an infinite loss, which the caller counts and skips.
    """
    losses = F.ctc_loss(log_probs.float().transpose(0, 1), targets, output_lengths, target_lengths,
                        blank=blank, reduction="none", zero_infinity=False)
    return losses.mean()
