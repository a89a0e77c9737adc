"""Speaker and sentence splits: train, dev and test share neither speakers nor sentences."""

from __future__ import annotations

import random

from speechprune.corpus.voices import Voice

SPLITS = ("train", "dev", "test")
HELD_OUT = ("dev", "test")


class SplitError(ValueError):
    """A split that cannot be made from the configured voices or fractions."""


def split_speakers(speakers: dict[str, list[Voice]], dev_fraction: float,
                   test_fraction: float, rng: random.Random) -> dict[str, list[str]]:
    """Split -> speaker ids. dev and test each get one natural speaker and their fraction of
    the espeak-ng speakers (at least one); train keeps the rest.

    Natural speakers with a single voice are held out first, so the speakers that two engines
    render (kal, slt) stay in train where that variety helps most.
    """
    natural = sorted(s for s, voices in speakers.items() if voices[0].natural)
    synthetic = sorted(s for s, voices in speakers.items() if not voices[0].natural)
    if len(natural) < len(SPLITS):
        raise SplitError(f"need at least {len(SPLITS)} natural speakers (one per split), "
                         f"have {natural}")
    rng.shuffle(natural)
    natural.sort(key=lambda speaker: len(speakers[speaker]))  # stable: shuffled within ties
    rng.shuffle(synthetic)
    dev_count = max(1, round(dev_fraction * len(synthetic)))
    test_count = max(1, round(test_fraction * len(synthetic)))
    if dev_count + test_count >= len(synthetic):
        raise SplitError(f"{len(synthetic)} espeak-ng speakers cannot fill dev ({dev_count}), "
                         "test ({test_count}) and train; add espeak_accents or espeak_variants "
                         "or lower dev_fraction/test_fraction")
    return {
        "dev": [natural[0]] + sorted(synthetic[:dev_count]),
        "test": [natural[1]] + sorted(synthetic[dev_count:dev_count + test_count]),
        "train": sorted(natural[2:]) + sorted(synthetic[dev_count + test_count:]),
    }


def split_counts(total: int, dev_fraction: float, test_fraction: float,
                 minimum: int) -> dict[str, int]:
    """Utterances per split: dev and test get their fraction (at least `minimum`), train the
    rest (which must be at least `minimum` too)."""
    dev = max(minimum, round(dev_fraction * total))
    test = max(minimum, round(test_fraction * total))
    train = total - dev - test
    if train < minimum:
        raise SplitError(f"{total} utterances are too few for train, dev ({dev}) and test "
                         f"({test}); raise target_hours")
    return {"train": train, "dev": dev, "test": test}
