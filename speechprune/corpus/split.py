"""Speaker and sentence splits: no two splits share a speaker or a sentence.

dev and test hold speakers that train does not, drawn from the same accents, variants and
engines; unseen_voices holds voices unlike any training voice (see voices.unseen_voice_catalogue).
"""

from __future__ import annotations

import random

from speechprune.corpus.voices import Voice

UNSEEN_VOICES = "unseen_voices"
SPLITS = ("train", "dev", "test", UNSEEN_VOICES)
HELD_OUT = ("dev", "test", UNSEEN_VOICES)


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
    if len(natural) < 3:
        raise SplitError(f"need at least 3 natural speakers (one each for train, dev and test), "
                         f"have {natural}; shorten corpus.unseen_natural_speakers")
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


def split_counts(total: int, fractions: dict[str, float], minimum: int) -> dict[str, int]:
    """Utterances per split: each held-out split gets its fraction (at least `minimum`), train
    the rest (which must be at least `minimum` too)."""
    counts = {split: max(minimum, round(fractions[split] * total)) for split in HELD_OUT}
    train = total - sum(counts.values())
    if train < minimum:
        held_out = ", ".join(f"{split} ({count})" for split, count in counts.items())
        raise SplitError(f"{total} utterances are too few for train and {held_out}; raise "
                         "corpus.target_hours")
    return {"train": train, **counts}
