"""Length-bucketed batches bounded by padded frames, SortaGrad, and a deterministic per-epoch
plan that resumes mid-epoch and splits evenly across distributed ranks.

Utterances are sorted by length and cut greedily into batches whose padded size
(batch size x longest utterance) stays within `max_frames_per_batch`, so utterances of similar
length share a batch and little padding is computed. The plan of an epoch depends only on
(lengths, seed, epoch): SortaGrad epoch 0 runs the batches shortest first (DeepSpeech2), later
epochs shuffle the batch order.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from speechprune.config import BatchConfig


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[float]) -> float:
    """Share of padded frames among all frames computed: sum over batches of
    (size x longest - sum of lengths), divided by the sum of size x longest."""
    padded = 0.0
    real = 0.0
    for batch in batches:
        if not batch:
            continue
        batch_lengths = [lengths[i] for i in batch]
        padded += len(batch) * max(batch_lengths)
        real += sum(batch_lengths)
    return 0.0 if padded == 0 else (padded - real) / padded


def bucket_batches(order: Sequence[int], lengths: Sequence[float], max_frames_per_batch: float,
                   max_batch_size: int) -> list[list[int]]:
    """Cut `order` (indices sorted by increasing length) greedily into consecutive batches with
    at most `max_batch_size` items and size x longest <= `max_frames_per_batch`. An utterance
    longer than the budget on its own forms a batch alone."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0.0
    for index in order:
        length = lengths[index]
        candidate_longest = max(longest, length)
        if current and (len(current) + 1 > max_batch_size
                        or (len(current) + 1) * candidate_longest > max_frames_per_batch):
            batches.append(current)
            current, candidate_longest = [], length
        current.append(index)
        longest = candidate_longest
    if current:
        batches.append(current)
    return batches


class BucketBatchSampler:
    """A torch batch sampler (`DataLoader(dataset, batch_sampler=...)`) of length-bucketed
    batches.

    lengths: per utterance, in the unit of `max_frames_per_batch` (feature frames, or seconds).
    sortagrad: epoch 0 in order of increasing length; shuffle: batch order shuffled in the other
    epochs (and in epoch 0 without SortaGrad), deterministically from (seed, epoch).
    num_replicas, rank: for DistributedDataParallel every rank gets the same number of batches,
    every num_replicas-th batch of the plan; the plan is padded by repeating its first batches
    to a multiple of num_replicas (so no utterance is lost, a few are seen twice).

    Every epoch: `set_epoch(epoch)`; when resuming after k finished batches of that epoch,
    `set_start_batch(k)` as well.
    """

    @classmethod
    def from_config(cls, lengths: Sequence[float], cfg: BatchConfig, train: bool, seed: int = 0,
                    num_replicas: int = 1, rank: int = 0) -> "BucketBatchSampler":
        """The sampler data.batching describes; evaluation (train=False) runs sorted, unshuffled."""
        return cls(lengths, cfg.max_frames_per_batch, cfg.max_batch_size,
                   sortagrad=cfg.sortagrad and train, shuffle=cfg.shuffle and train, seed=seed,
                   num_replicas=num_replicas, rank=rank)

    def __init__(self, lengths: Sequence[float], max_frames_per_batch: float,
                 max_batch_size: int, sortagrad: bool = True, shuffle: bool = True,
                 seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if max_frames_per_batch <= 0 or max_batch_size <= 0:
            raise ValueError("data.batching.max_frames_per_batch and max_batch_size must be "
                             f"positive, got {max_frames_per_batch} and {max_batch_size}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas), got rank={rank} of "
                             f"{num_replicas}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.lengths = list(lengths)
        self.max_frames_per_batch = max_frames_per_batch
        self.max_batch_size = max_batch_size
        self.sortagrad = sortagrad
        self.shuffle = shuffle
        self.seed = seed
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.start_batch = 0
        self._cached_plan: tuple[int, list[list[int]]] | None = None  # (epoch, rank's plan)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose plan iteration follows, from its first batch."""
        self.epoch = epoch
        self.start_batch = 0

    def set_start_batch(self, k: int) -> None:
        """Skip the first `k` batches (of this rank) of the current epoch: resuming a run that
        had finished k batches of it. Call after `set_epoch`, which resets it to 0."""
        if k < 0:
            raise ValueError(f"start batch must be >= 0, got {k}")
        self.start_batch = k

    def global_batches(self, epoch: int) -> list[list[int]]:
        """The plan of `epoch` over all ranks, before the split."""
        # Epoch 0 of SortaGrad and unshuffled runs: ties in length broken by index.
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        in_order = (self.sortagrad and epoch == 0) or not self.shuffle
        if in_order:
            order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], i))
        else:
            # Ties broken at random so equal-length utterances change batch between epochs.
            tie_break = rng.permutation(len(self.lengths))
            order = sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], tie_break[i]))
        batches = bucket_batches(order, self.lengths, self.max_frames_per_batch,
                                 self.max_batch_size)
        if not in_order:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def batches(self, epoch: int) -> list[list[int]]:
        """This rank's plan for `epoch`: every num_replicas-th batch of the padded global plan.
        All ranks get the same count."""
        if self._cached_plan is not None and self._cached_plan[0] == epoch:
            return [list(batch) for batch in self._cached_plan[1]]
        plan = self.global_batches(epoch)
        if self.num_replicas > 1 and plan:
            shortfall = -len(plan) % self.num_replicas
            plan = plan + [plan[i % len(plan)] for i in range(shortfall)]
            plan = plan[self.rank::self.num_replicas]
        self._cached_plan = (epoch, plan)
        return [list(batch) for batch in plan]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches(self.epoch)[self.start_batch:]

    def __len__(self) -> int:
        return max(0, len(self.batches(self.epoch)) - self.start_batch)
