"""`speechprune data build`: plan a corpus, synthesize it in parallel, write its manifests.

The build is resumable and idempotent. The plan is saved first; each FLAC is written
atomically and skipped when present, so an interrupted build continues where it stopped; the
`.complete` marker is written last and a corpus that has it is not built again.

Layout of `output_dir`: plan.json, audio/<split>/<speaker>/<id>.flac, train.jsonl, dev.jsonl,
test.jsonl, unseen_voices.jsonl, build_info.json, .complete.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from speechprune.config import CorpusConfig
from speechprune.corpus.plan import PlannedUtterance, load_plan, make_plan, plan_settings, save_plan
from speechprune.corpus.split import SPLITS
from speechprune.corpus.synthesize import synthesize_job
from speechprune.corpus.voices import (
    FESTIVAL, check_engines_installed, unseen_voice_catalogue, voice_catalogue)
from speechprune.data.audio import audio_duration
from speechprune.data.manifest import Utterance, write_jsonl

log = logging.getLogger(__name__)

MARKER = ".complete"
PLAN_FILE = "plan.json"
BUILD_INFO_FILE = "build_info.json"


@dataclass(frozen=True)
class BuildResult:
    output_dir: Path
    complete: bool  # manifests and marker written
    already_complete: bool  # the marker was there: nothing was done
    synthesized: int  # utterances synthesized by this call
    seconds: float  # wall time of this call


def build_corpus(cfg: CorpusConfig, max_utterances: int | None = None) -> BuildResult:
    """Build (or finish building) the corpus described by `cfg` under `cfg.output_dir`.

    `max_utterances` stops after synthesizing that many utterances, leaving a partial build
    that the next call resumes (for builds in slices, and for testing the resume).
    """
    started = time.monotonic()
    output_dir = Path(cfg.output_dir)
    if (output_dir / MARKER).is_file():
        # A corpus of an older plan (other settings, fewer splits) must not pass for this one.
        load_plan(output_dir / PLAN_FILE, plan_settings(cfg))
        log.info("%s is already complete (%s present); delete the folder to rebuild it",
                 output_dir, MARKER)
        return BuildResult(output_dir, True, True, 0, time.monotonic() - started)
    check_engines_installed(voice_catalogue(cfg) + unseen_voice_catalogue(cfg))
    plan = _load_or_make_plan(cfg, output_dir)
    pending = [u for u in plan if not (output_dir / u.audio).is_file()]
    if len(pending) < len(plan):
        log.info("resuming: %d of %d utterances already synthesized", len(plan) - len(pending),
                 len(plan))
    if max_utterances is not None:
        pending = pending[:max_utterances]
    synthesize_all(pending, output_dir, cfg)
    if any(not (output_dir / u.audio).is_file() for u in plan):
        log.info("stopped after %d utterances; run the build again to continue", len(pending))
        return BuildResult(output_dir, False, False, len(pending), time.monotonic() - started)
    info = write_manifests(plan, output_dir)
    info.update(name=cfg.name, seed=cfg.seed, build_seconds=round(time.monotonic() - started, 1),
                resumed=len(pending) < len(plan))
    (output_dir / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n",
                                              encoding="utf-8")
    (output_dir / MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"), encoding="utf-8")
    hours = ", ".join(f"{split} {info['hours'][split]:.2f} h" for split in SPLITS)
    log.info("corpus %s complete in %s: %s; %d s", cfg.name, output_dir, hours,
             info["build_seconds"])
    return BuildResult(output_dir, True, False, len(pending), time.monotonic() - started)


def _load_or_make_plan(cfg: CorpusConfig, output_dir: Path) -> list[PlannedUtterance]:
    settings = plan_settings(cfg)
    plan_path = output_dir / PLAN_FILE
    if plan_path.is_file():
        return load_plan(plan_path, settings)
    plan = make_plan(cfg)
    save_plan(plan, settings, plan_path)
    log.info("planned %d utterances of corpus %s in %s", len(plan), cfg.name, plan_path)
    return plan


def make_jobs(utterances: list[PlannedUtterance],
              cfg: CorpusConfig) -> list[list[PlannedUtterance]]:
    """Group utterances into worker jobs of one engine (festival: one voice, as one process
    synthesizes the job), largest jobs first so the slow ones do not trail at the end."""
    groups: dict[tuple[str, str], list[PlannedUtterance]] = {}
    for utterance in utterances:
        voice = utterance.voice if utterance.engine == FESTIVAL else ""
        groups.setdefault((utterance.engine, voice), []).append(utterance)
    jobs = []
    for (engine, _), group in groups.items():
        size = max(1, cfg.festival_job_size if engine == FESTIVAL else cfg.job_size)
        jobs += [group[start:start + size] for start in range(0, len(group), size)]
    return sorted(jobs, key=lambda job: job[0].engine != FESTIVAL)


def synthesize_all(utterances: list[PlannedUtterance], output_dir: Path,
                   cfg: CorpusConfig) -> None:
    """Synthesize `utterances` with `cfg.workers` processes, logging progress."""
    if not utterances:
        return
    jobs = make_jobs(utterances, cfg)
    progress = Progress(len(utterances), cfg.progress_every_s)
    if cfg.workers <= 1:
        for job in jobs:
            progress.add(synthesize_job(job, str(output_dir), cfg))
    else:
        pool = ProcessPoolExecutor(max_workers=cfg.workers)
        try:
            running = {pool.submit(synthesize_job, job, str(output_dir), cfg) for job in jobs}
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    progress.add(future.result())
        except BaseException:
            # Ctrl-C or a failed job: drop the queued jobs instead of running them all first.
            # Files already written are complete (atomic), so the next build resumes from them.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    progress.report(final=True)


class Progress:
    """Periodic log line: utterances done, audio seconds, speed (x real time) and ETA."""

    def __init__(self, total: int, every_s: float):
        self.total, self.every_s = total, every_s
        self.done, self.audio_s = 0, 0.0
        self.started = self.last_report = time.monotonic()

    def add(self, results: list[tuple[str, float]]) -> None:
        self.done += len(results)
        self.audio_s += sum(seconds for _, seconds in results)
        if time.monotonic() - self.last_report >= self.every_s:
            self.report()

    def report(self, final: bool = False) -> None:
        self.last_report = time.monotonic()
        elapsed = max(1e-6, self.last_report - self.started)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        log.info("%s %d/%d utterances, %.0f s of audio in %.0f s (%.0fx real time)%s",
                 "synthesized" if final else "synthesizing", self.done, self.total,
                 self.audio_s, elapsed, self.audio_s / elapsed,
                 "" if final else f", ETA {eta:.0f} s")


def write_manifests(plan: list[PlannedUtterance], output_dir: Path) -> dict:
    """Write <split>.jsonl for every split (durations read from the FLAC headers) and return
    the corpus statistics for build_info.json."""
    info: dict = {"utterances": {}, "hours": {}, "speakers": {}, "voices": {},
                  "vocabulary_size": {}}
    vocabulary: set[str] = set()
    for split in SPLITS:
        entries = [u for u in plan if u.split == split]
        utterances = [
            Utterance(str(output_dir / u.audio), audio_duration(output_dir / u.audio), u.text,
                      extra={"speaker": u.speaker, "voice": f"{u.engine}:{u.voice}",
                             "split": split})
            for u in entries
        ]
        write_jsonl(utterances, output_dir / f"{split}.jsonl")
        words = {word for u in entries for word in u.text.split()}
        vocabulary |= words
        info["utterances"][split] = len(entries)
        info["hours"][split] = round(sum(u.duration for u in utterances) / 3600, 4)
        info["speakers"][split] = sorted({u.speaker for u in entries})
        info["voices"][split] = sorted({f"{u.engine}:{u.voice}" for u in entries})
        info["vocabulary_size"][split] = len(words)
    info["vocabulary_size"]["all"] = len(vocabulary)
    return info
