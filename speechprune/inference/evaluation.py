"""Running an acoustic model over a data set: loss, transcripts and corpus WER/CER."""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Optional

import torch
from tqdm import tqdm

from speechprune.data.text import Alphabet
from speechprune.decoding.beam import GreedyDecoder
from speechprune.decoding.metrics import ErrorCounts
from speechprune.model.loss import ctc_loss


@dataclass
class UtteranceResult:
    index: int  # position in the evaluated manifest
    reference: str
    hypothesis: str
    errors: ErrorCounts

    @property
    def wer(self) -> float:
        return self.errors.wer

    @property
    def cer(self) -> float:
        return self.errors.cer

    def as_dict(self) -> dict:
        return {"index": self.index, "reference": self.reference, "hypothesis": self.hypothesis,
                **asdict(self.errors), "wer": self.wer, "cer": self.cer}


@dataclass
class EvaluationResult:
    loss: float  # mean CTC loss per utterance (nats); NaN when no batch had a finite loss
    counts: ErrorCounts
    utterances: list[UtteranceResult] = field(default_factory=list)
    skipped: int = 0
    # Skipped utterances by kind (speechprune.data.dataset.skip_kind), and why each was
    # skipped (one sentence naming its manifest line), in the order evaluated.
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    skip_reasons: list[str] = field(default_factory=list)
    # Wall time of the acoustic model's forward passes and of decoding, seconds (for the
    # real-time factor: divide by the audio's duration).
    model_seconds: float = 0.0
    decode_seconds: float = 0.0

    @property
    def wer(self) -> float:
        return self.counts.wer

    @property
    def cer(self) -> float:
        return self.counts.cer

    def summary(self) -> dict:
        """Corpus figures plus the best, median and worst utterance by WER."""
        ranked = sorted(self.utterances, key=lambda u: (u.wer, u.cer))
        pick = {}
        if ranked:
            pick = {"best": ranked[0].as_dict(), "median": ranked[len(ranked) // 2].as_dict(),
                    "worst": ranked[-1].as_dict()}
        return {"wer": self.wer, "cer": self.cer, "loss": self.loss,
                "utterances": len(self.utterances), "skipped": self.skipped,
                "skipped_by_reason": self.skipped_by_reason,
                "model_seconds": self.model_seconds, "decode_seconds": self.decode_seconds,
                **asdict(self.counts),
                "median_utterance_wer": statistics.median(u.wer for u in ranked) if ranked else math.nan,
                **pick}


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable, alphabet: Alphabet,
             device: torch.device, autocast_dtype: Optional[torch.dtype] = None,
             decoder: Optional[Callable[[torch.Tensor, torch.Tensor], list[str]]] = None,
             progress: Optional[str] = None) -> EvaluationResult:
    """Decode every batch (speechprune.data.dataset.Batch) and sum the edit counts.

    decoder: (log_probs (batch, time, classes) float32 on the CPU, lengths (batch,)) -> one
    transcript per utterance, e.g. speechprune.decoding.beam.build_decoder(cfg, alphabet);
    None decodes greedily. progress: the label of a progress bar in utterances, with rate and
    ETA (None: no bar).
    """
    decoder = decoder or GreedyDecoder(alphabet)
    model_seconds = decode_seconds = 0.0
    was_training = model.training
    model.eval()
    counts = ErrorCounts()
    results: list[UtteranceResult] = []
    loss_sum, loss_batches, skipped = 0.0, 0, 0
    skipped_by_reason: Counter[str] = Counter()
    skip_reasons: list[str] = []
    dataset = getattr(batches, "dataset", None)  # a DataLoader knows how many utterances come
    bar = tqdm(total=len(dataset) if dataset is not None else None, desc=progress, unit="utt",
               disable=progress is None, leave=False, dynamic_ncols=True, mininterval=2.0)
    for batch in batches:
        skipped += batch.skipped
        skipped_by_reason.update(batch.skip_kinds)
        skip_reasons.extend(batch.skip_reasons)
        bar.update(len(batch.indices) + batch.skipped)
        if batch.features.shape[0] == 0:
            continue
        started = time.perf_counter()
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            log_probs, output_lengths = model(batch.features, batch.feature_lengths)
        loss = ctc_loss(log_probs, output_lengths, batch.targets, batch.target_lengths)
        if torch.isfinite(loss):
            loss_sum += loss.item()
            loss_batches += 1
        log_probs, output_lengths = log_probs.float().cpu(), output_lengths.cpu()
        decoding = time.perf_counter()
        model_seconds += decoding - started
        hypotheses = decoder(log_probs, output_lengths)
        decode_seconds += time.perf_counter() - decoding
        for index, reference, hypothesis in zip(batch.indices, batch.texts, hypotheses):
            errors = ErrorCounts()
            errors.add(reference, hypothesis)
            counts = counts.merge(errors)
            results.append(UtteranceResult(int(index), reference, hypothesis, errors))
    bar.close()
    model.train(was_training)
    results.sort(key=lambda r: r.index)
    loss = loss_sum / loss_batches if loss_batches else math.nan
    return EvaluationResult(loss, counts, results, skipped, dict(sorted(skipped_by_reason.items())),
                            skip_reasons, model_seconds, decode_seconds)
