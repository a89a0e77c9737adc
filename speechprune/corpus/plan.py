"""The build plan: every utterance of a corpus decided up front (split, speaker, voice, text,
rate, pitch), so that the build is deterministic for a seed and can resume from the plan."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from speechprune import atomic_write
from speechprune.config import CorpusConfig
from speechprune.corpus.prompts import Prompt
from speechprune.corpus.split import (
    HELD_OUT, SPLITS, UNSEEN_VOICES, SplitError, split_counts, split_speakers)
from speechprune.corpus.voices import (
    Voice, unseen_voice_catalogue, voice_catalogue, voices_by_speaker)

PLAN_FORMAT = 2  # 2: the unseen_voices split
# Rough seconds of finished audio per prompt at rate 1: a fixed part, a part per spoken
# character and one per comma pause; fitted on built corpora of both kinds (within 3% of the
# total). Only used to size the corpus.
ESTIMATE_BASE_S, ESTIMATE_S_PER_CHAR, ESTIMATE_S_PER_PAUSE = 0.49, 0.055, 0.24
# Each held-out split gets at least one natural and one espeak-ng utterance.
MIN_UTTERANCES_PER_SPLIT = 2
# Settings that do not change what is synthesized (a resume may change them).
NOT_PLAN_SETTINGS = {"output_dir", "workers", "job_size", "festival_job_size",
                     "progress_every_s"}


class PlanError(ValueError):
    """A plan that does not fit the corpus being built; the message says how to fix it."""


@dataclass(frozen=True)
class PlannedUtterance:
    id: str
    split: str
    speaker: str
    engine: str
    voice: str  # the engine's voice name
    text: str  # transcript
    spoken: str  # what the engine reads
    rate: float  # speaking-rate multiplier (1: the engine's configured rate)
    pitch_semitones: float
    audio: str  # FLAC path relative to the corpus folder


def estimate_seconds(prompt: Prompt) -> float:
    pauses = prompt.spoken.count(",")
    return (ESTIMATE_BASE_S + ESTIMATE_S_PER_CHAR * (len(prompt.spoken) - pauses)
            + ESTIMATE_S_PER_PAUSE * pauses)


def plan_settings(cfg: CorpusConfig) -> dict:
    """The settings that decide the plan's content, as plain data."""
    from omegaconf import OmegaConf

    node = cfg if OmegaConf.is_config(cfg) else OmegaConf.structured(cfg)
    settings = OmegaConf.to_container(node, resolve=False)
    return {key: value for key, value in settings.items() if key not in NOT_PLAN_SETTINGS}


def corpus_prompts(cfg: CorpusConfig, rng: random.Random) -> list[Prompt]:
    """Distinct prompts, in random order, whose estimated audio adds up to target_hours."""
    target_s = cfg.target_hours * 3600
    if cfg.name == "tiny":
        from speechprune.corpus.tiny_domain import tiny_prompts

        # Generate in growing rounds: the generator's order is fixed by the seed, so a prefix
        # of a longer list equals a shorter list.
        count, domain_seed = 64, rng.random()
        while True:
            prompts = tiny_prompts(count, random.Random(domain_seed))
            chosen = _prefix_for_seconds(prompts, target_s)
            if chosen is not None:
                return chosen
            count *= 2
    if cfg.name == "sentences":
        from speechprune.corpus.sentence_sources import sentence_prompts

        prompts = sentence_prompts(cfg.min_words, cfg.max_words)
        rng.shuffle(prompts)
        chosen = _prefix_for_seconds(prompts, target_s)
        if chosen is None:
            hours = sum(map(estimate_seconds, prompts)) / 3600
            raise PlanError(f"the sentence sources hold only about {hours:.1f} h of speech; "
                            f"lower corpus.target_hours (now {cfg.target_hours})")
        return chosen
    raise PlanError(f"corpus.name must be 'tiny' or 'sentences', got {cfg.name!r}")


def _prefix_for_seconds(prompts: list[Prompt], target_s: float) -> list[Prompt] | None:
    total = 0.0
    for index, prompt in enumerate(prompts):
        total += estimate_seconds(prompt)
        if total >= target_s:
            return prompts[: max(index + 1, MIN_UTTERANCES_PER_SPLIT * len(SPLITS))]
    return None


def make_plan(cfg: CorpusConfig) -> list[PlannedUtterance]:
    """Every utterance of the corpus, split by split in the order of SPLITS."""
    if not 0 <= cfg.natural_share <= 1:
        raise PlanError(f"corpus.natural_share must be in [0, 1], got {cfg.natural_share}")
    rng = random.Random(cfg.seed)
    speakers = voices_by_speaker(voice_catalogue(cfg))
    speakers_of_split = split_speakers(speakers, cfg.dev_fraction, cfg.test_fraction, rng)
    unseen = voices_by_speaker(unseen_voice_catalogue(cfg))
    _check_unseen_split(cfg, unseen)
    speakers |= unseen
    speakers_of_split[UNSEEN_VOICES] = sorted(unseen)
    prompts = corpus_prompts(cfg, rng)
    fractions = {"dev": cfg.dev_fraction, "test": cfg.test_fraction,
                 UNSEEN_VOICES: cfg.unseen_fraction}
    counts = split_counts(len(prompts), fractions, MIN_UTTERANCES_PER_SPLIT)
    plan = []
    start = 0
    for split in SPLITS:
        split_prompts = prompts[start:start + counts[split]]
        start += counts[split]
        voices = _assign_voices(len(split_prompts), speakers_of_split[split], speakers,
                                cfg.natural_share, force_both=split in HELD_OUT, rng=rng)
        for index, (prompt, voice) in enumerate(zip(split_prompts, voices)):
            utterance_id = f"{cfg.name}-{split}-{index:06d}"
            plan.append(PlannedUtterance(
                id=utterance_id, split=split, speaker=voice.speaker, engine=voice.engine,
                voice=voice.name, text=prompt.text, spoken=prompt.spoken,
                rate=round(rng.uniform(cfg.rate_min, cfg.rate_max), 3),
                pitch_semitones=round(rng.uniform(cfg.pitch_min, cfg.pitch_max), 2),
                audio=f"audio/{split}/{voice.speaker}/{utterance_id}.flac",
            ))
    return plan


def _check_unseen_split(cfg: CorpusConfig, unseen: dict[str, list[Voice]]) -> None:
    """The unseen-voices split needs a share and both kinds of speaker (natural, espeak-ng)."""
    if not 0 < cfg.unseen_fraction < 1:
        raise SplitError(f"corpus.unseen_fraction must be in (0, 1), got {cfg.unseen_fraction}")
    kinds = {voices[0].natural for voices in unseen.values()}
    if True not in kinds:
        raise SplitError("the unseen-voices split would have no natural speaker; list one in "
                         "corpus.unseen_natural_speakers")
    if False not in kinds:
        raise SplitError("the unseen-voices split would have no espeak-ng speaker; list an "
                         "accent or variant in corpus.unseen_espeak_accents or "
                         "corpus.unseen_espeak_variants")


def _assign_voices(count: int, speaker_ids: list[str], speakers: dict[str, list[Voice]],
                   natural_share: float, force_both: bool, rng: random.Random) -> list[Voice]:
    """One voice per utterance: natural with probability `natural_share`, speakers taken in
    turn (so each gets a similar share), a random voice of the speaker. With `force_both` the
    first two utterances are one natural and one espeak-ng, so a small split still has both."""
    natural = [s for s in speaker_ids if speakers[s][0].natural]
    synthetic = [s for s in speaker_ids if not speakers[s][0].natural]
    # Random turn order: a small corpus then samples all accents, not the first few by name.
    rng.shuffle(natural)
    rng.shuffle(synthetic)
    turns = {True: 0, False: 0}
    voices = []
    for index in range(count):
        if force_both and index < 2:
            is_natural = index == 0
        else:
            is_natural = rng.random() < natural_share
        group = natural if is_natural else synthetic
        speaker = group[turns[is_natural] % len(group)]
        turns[is_natural] += 1
        voices.append(rng.choice(speakers[speaker]))
    return voices


def save_plan(plan: list[PlannedUtterance], settings: dict, path: Path) -> None:
    """Write the plan atomically (JSON: format, settings, utterances)."""
    content = {"format": PLAN_FORMAT, "settings": settings,
               "utterances": [asdict(utterance) for utterance in plan]}
    atomic_write.write_text(path, json.dumps(content, indent=1))


def load_plan(path: Path, settings: dict) -> list[PlannedUtterance]:
    """The saved plan; PlanError if it was made with other settings than `settings`."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        saved_settings = content["settings"]
        utterances = [PlannedUtterance(**entry) for entry in content["utterances"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise PlanError(f"{path}: unreadable build plan ({error}); delete the corpus folder "
                        "and build again") from None
    if content.get("format") != PLAN_FORMAT:
        raise PlanError(f"{path.parent} was built by an older speechprune (plan format "
                        f"{content.get('format')}, now {PLAN_FORMAT}); delete that folder and "
                        "build again")
    changed = sorted(key for key in set(settings) | set(saved_settings)
                     if settings.get(key) != saved_settings.get(key))
    if changed:
        raise PlanError(f"{path.parent} holds a build made with other settings "
                        f"({', '.join('corpus.' + key for key in changed)}); delete that folder "
                        "or choose another corpus.output_dir")
    return utterances
