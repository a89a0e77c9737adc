"""Running an acoustic model over a data set: loss, transcripts and corpus WER/CER."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional

import torch

from speechprune.data.text import Alphabet
from speechprune.decoding.greedy import greedy_decode
from speechprune.decoding.metrics import ErrorCounts, utterance_errors
from speechprune.training.loss import ctc_loss


@dataclass
class UtteranceResult:
    index: int  # position in the evaluated manifest
    reference: str
    hypothesis: str
    word_errors: int
    words: int
    char_errors: int
    chars: int

    @property
    def wer(self) -> float:
        return 100.0 * self.word_errors / max(1, self.words)


@dataclass
class EvaluationResult:
    loss: float  # mean CTC loss per utterance (nats); NaN when no batch had a finite loss
    counts: ErrorCounts
    utterances: list[UtteranceResult] = field(default_factory=list)
    skipped: int = 0

    @property
    def wer(self) -> float:
        return self.counts.wer

    @property
    def cer(self) -> float:
        return self.counts.cer

    def summary(self) -> dict:
        """Corpus figures plus the best, median and worst utterance by WER."""
        ranked = sorted(self.utterances, key=lambda u: (u.wer, u.char_errors))
        pick = {}
        if ranked:
            pick = {"best": asdict(ranked[0]), "median": asdict(ranked[len(ranked) // 2]),
                    "worst": asdict(ranked[-1])}
        return {"wer": self.wer, "cer": self.cer, "loss": self.loss,
                "utterances": len(self.utterances), "skipped": self.skipped,
                "words": self.counts.words, "word_errors": self.counts.word_edits,
                "chars": self.counts.chars, "char_errors": self.counts.char_edits,
                "median_utterance_wer": statistics.median(u.wer for u in ranked) if ranked else math.nan,
                **pick}


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable, alphabet: Alphabet,
             device: torch.device, autocast_dtype: Optional[torch.dtype] = None) -> EvaluationResult:
    """Greedy-decode every batch (speechprune.data.dataset.Batch) and sum the edit counts."""
    was_training = model.training
    model.eval()
    counts = ErrorCounts()
    results: list[UtteranceResult] = []
    loss_sum, loss_batches, skipped = 0.0, 0, 0
    for batch in batches:
        skipped += batch.skipped
        if batch.features.shape[0] == 0:
            continue
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            log_probs, output_lengths = model(batch.features, batch.feature_lengths)
        loss = ctc_loss(log_probs, output_lengths, batch.targets, batch.target_lengths)
        if torch.isfinite(loss):
            loss_sum += loss.item()
            loss_batches += 1
        hypotheses = greedy_decode(log_probs.float().cpu(), output_lengths.cpu(), alphabet)
        for index, reference, hypothesis in zip(batch.indices, batch.texts, hypotheses):
            counts.add(reference, hypothesis)
            errors = utterance_errors(reference, hypothesis)
            results.append(UtteranceResult(int(index), reference, hypothesis,
                                           errors["word_errors"], errors["words"],
                                           errors["char_errors"], errors["chars"]))
    model.train(was_training)
    results.sort(key=lambda r: r.index)
    loss = loss_sum / loss_batches if loss_batches else math.nan
    return EvaluationResult(loss, counts, results, skipped)
