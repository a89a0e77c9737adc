"""Specification of speechprune/data/batching.py: SortaGrad, frame-bounded length buckets, a
deterministic plan per (seed, epoch), resuming mid-epoch and equal splits across ranks."""

import numpy as np
import pytest
from torch.utils.data import DataLoader

from speechprune.config import BatchConfig
from speechprune.data.batching import BucketBatchSampler, bucket_batches, padding_fraction


@pytest.fixture
def lengths():
    # Frame counts of 500 utterances between 0.5 s and 15 s, as in a real corpus.
    return np.random.default_rng(0).integers(50, 1500, size=500).tolist()


def sampler(lengths, **overrides):
    settings = dict(max_frames_per_batch=6000, max_batch_size=32, sortagrad=True, shuffle=True,
                    seed=3)
    settings.update(overrides)
    return BucketBatchSampler(lengths, **settings)


def test_first_sortagrad_epoch_runs_in_order_of_increasing_length(lengths):
    plan = sampler(lengths).batches(0)
    flat = [i for batch in plan for i in batch]
    assert [lengths[i] for i in flat] == sorted(lengths)


def test_batches_respect_the_frame_budget_and_batch_size(lengths):
    s = sampler(lengths)
    for epoch in range(3):
        for batch in s.batches(epoch):
            assert len(batch) <= 32
            assert len(batch) * max(lengths[i] for i in batch) <= 6000


def test_an_utterance_longer_than_the_budget_gets_a_batch_of_its_own():
    assert bucket_batches([0, 1, 2], [10, 20, 9000], 100, 8) == [[0, 1], [2]]


@pytest.mark.parametrize("epoch", [0, 1, 5])
def test_every_index_appears_exactly_once_per_epoch(lengths, epoch):
    flat = sorted(i for batch in sampler(lengths).batches(epoch) for i in batch)
    assert flat == list(range(len(lengths)))


def test_plan_is_deterministic_for_seed_and_epoch_and_shuffled_after_the_first(lengths):
    assert sampler(lengths).batches(2) == sampler(lengths).batches(2)
    assert sampler(lengths).batches(2) != sampler(lengths).batches(3)
    assert sampler(lengths).batches(2) != sampler(lengths, seed=4).batches(2)
    later = sampler(lengths).batches(1)
    longest = [max(lengths[i] for i in batch) for batch in later]
    assert longest != sorted(longest)  # not shortest-first any more


def test_without_shuffle_every_epoch_is_sorted(lengths):
    s = sampler(lengths, shuffle=False, sortagrad=False)
    assert s.batches(4) == s.batches(0) == sampler(lengths).batches(0)


def test_without_sortagrad_the_first_epoch_is_shuffled(lengths):
    plan = sampler(lengths, sortagrad=False).batches(0)
    longest = [max(lengths[i] for i in batch) for batch in plan]
    assert longest != sorted(longest)


def test_iteration_follows_set_epoch_and_len_matches(lengths):
    s = sampler(lengths)
    s.set_epoch(2)
    assert len(s) == len(s.batches(2))
    assert list(s) == s.batches(2)


def test_resume_skips_the_first_k_batches_of_the_current_epoch_only(lengths):
    s = sampler(lengths)
    s.set_epoch(1)
    full = s.batches(1)
    s.set_start_batch(5)
    assert len(s) == len(full) - 5
    assert list(s) == full[5:]
    # A resumed run continues exactly where the uninterrupted one would have.
    uninterrupted = sampler(lengths)
    uninterrupted.set_epoch(1)
    assert list(uninterrupted)[5:] == full[5:]
    s.set_epoch(2)  # the next epoch runs in full
    assert list(s) == s.batches(2) and len(s) == len(s.batches(2))


@pytest.mark.parametrize("replicas", [2, 3])
def test_ranks_get_equal_counts_of_disjoint_batches_covering_the_epoch(lengths, replicas):
    plans = [sampler(lengths, num_replicas=replicas, rank=r).batches(1) for r in range(replicas)]
    assert len({len(plan) for plan in plans}) == 1
    global_plan = sampler(lengths).global_batches(1)
    # Disjoint: the only shared batches are the few repeats that pad the plan to a multiple.
    seen = [tuple(batch) for plan in plans for batch in plan]
    repeats = len(seen) - len(global_plan)
    assert 0 <= repeats < replicas
    assert len(set(seen)) == len(global_plan)
    assert sorted(i for batch in set(seen) for i in batch) == list(range(len(lengths)))


def test_bucketing_pads_much_less_than_random_batches(lengths):
    bucketed = sampler(lengths).batches(1)
    order = np.random.default_rng(5).permutation(len(lengths))
    size = round(np.mean([len(b) for b in bucketed]))
    random_batches = [order[i:i + size].tolist() for i in range(0, len(order), size)]
    assert padding_fraction(bucketed, lengths) < 0.05
    assert padding_fraction(bucketed, lengths) < padding_fraction(random_batches, lengths) / 5


def test_padding_fraction_counts_padded_frames():
    assert padding_fraction([[0, 1]], [100, 50]) == pytest.approx(50 / 200)
    assert padding_fraction([[0], [1]], [100, 50]) == 0.0


def test_works_as_a_torch_batch_sampler(lengths):
    s = sampler(lengths)
    loader = DataLoader(list(range(len(lengths))), batch_sampler=s, collate_fn=list)
    assert [batch for batch in loader] == s.batches(0)
    assert len(loader) == len(s.batches(0))


def test_from_config_sorts_and_does_not_shuffle_for_evaluation(lengths):
    cfg = BatchConfig(max_frames_per_batch=6000, max_batch_size=32)
    evaluation = BucketBatchSampler.from_config(lengths, cfg, train=False, seed=3)
    training = BucketBatchSampler.from_config(lengths, cfg, train=True, seed=3)
    assert evaluation.batches(3) == evaluation.batches(0) == training.batches(0)
    assert training.batches(3) != training.batches(0)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="max_frames_per_batch"):
        BucketBatchSampler([1, 2], 0, 4)
    with pytest.raises(ValueError, match="rank"):
        BucketBatchSampler([1, 2], 10, 4, num_replicas=2, rank=2)


def test_training_set_up_plans_a_20k_line_manifest_covering_each_utterance_once(tmp_path):
    """A 20,000-line manifest as `speechprune train` sets it up: its lines share 5 real
    recordings but state their own durations (0.5-15 s), which the plan uses without opening
    a file; the plans of SortaGrad epoch 0 and shuffled epoch 1 cover every utterance exactly
    once, in well under the time budget (about 1.5 s measured on 2 busy cores;
    scripts/bench_data_scale.py times 100,000 lines).

    Seen to fail: frame_lengths reading every file's header instead of the manifest's
    duration (the lengths were the recordings'); bucket_batches dropping its last, partial
    batch (utterances missing from the plans)."""
    import json
    import time

    import soundfile as sf

    from speechprune.commands import compose_config
    from speechprune.model.run_setup import build_data
    from speechprune.training.distributed import DistributedContext

    rng = np.random.default_rng(0)
    recordings = []
    for number, seconds in enumerate([0.6, 1.1, 1.7, 2.3, 3.2]):
        path = tmp_path / f"recording{number}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
        recordings.append(str(path))
    durations = np.round(rng.uniform(0.5, 15.0, size=20_000), 3).tolist()
    manifest = tmp_path / "train.jsonl"
    with manifest.open("w") as out:
        for number, seconds in enumerate(durations):
            out.write(json.dumps({"audio_filepath": recordings[number % len(recordings)],
                                  "duration": seconds, "text": "one two three"}) + "\n")
    small = tmp_path / "dev.jsonl"
    small.write_text("".join(manifest.read_text().splitlines(keepends=True)[:5]))
    data_cfg = compose_config("train", [f"data.train_manifest={manifest}",
                                        f"data.dev_manifest={small}",
                                        f"data.test_manifest={small}"]).data

    start = time.perf_counter()
    data = build_data(data_cfg, seed=1, time_stride=2, dist=DistributedContext())
    plans = [data.train_sampler.batches(epoch) for epoch in (0, 1)]
    elapsed = time.perf_counter() - start
    assert data.train_sampler.lengths == [data.features.frames_for_duration(d) for d in durations]
    for plan in plans:
        assert sorted(i for batch in plan for i in batch) == list(range(20_000))
    assert plans[0] != plans[1]
    assert elapsed < 5.0
