"""Wall time and peak memory of the data path on a 100k-utterance manifest, against a budget.

Builds a synthetic manifest of `--utterances` lines (100,000 by default) that point, in turn,
at the first `--files` real recordings of a corpus manifest (data/tiny/train.jsonl, from
`make data`), each line with that recording's duration and transcript, then times three stages,
each in a fresh process so that its peak resident memory (getrusage's ru_maxrss) is its own:

  data check   `speechprune data check manifest=<100k>`: reads the manifest and decodes every
               line's audio (the same few files, from the page cache)
  batching     reading the manifest as training does and building the bucketed batch plans of
               epochs 0 and 1 (SortaGrad, then shuffled)
  start-up     `speechprune train`'s set-up (data, model, optimizer, DataLoader) up to the first
               training batch in hand, dev and test from the corpus manifest's folder

The budgets are issue 18's figures from before this script, on 2 cores (data check 42 s and
356 MB, training start-up 9 s and 1.1 GB; batching is part of start-up and gets its budget): no
stage may do worse. The exit status is 1 when a stage exceeds its budget or fails. Peak memory
includes the interpreter and its imports (torch alone is about 500 MB).

    .venv/bin/python scripts/bench_data_scale.py [--utterances 100000] [--files 8]
        [--corpus data/tiny/train.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEECHPRUNE = str(Path(sys.executable).parent / "speechprune")

# (seconds, MB of peak resident memory) per stage.
BUDGETS = {"data check": (42.0, 356.0), "batching": (9.0, 1100.0), "start-up": (9.0, 1100.0)}


def write_manifest(corpus: Path, utterances: int, files: int, path: Path) -> None:
    """`utterances` JSON lines cycling through the first `files` entries of `corpus`."""
    from speechprune.data.manifest import read_jsonl

    sources = read_jsonl(corpus)[:files]
    if not sources:
        raise SystemExit(f"{corpus}: no utterances; build the corpus with `make data`")
    with path.open("w", encoding="utf-8") as out:
        for number in range(utterances):
            source = sources[number % len(sources)]
            out.write(json.dumps({"audio_filepath": source.audio_filepath,
                                  "duration": source.duration, "text": source.text}) + "\n")


def train_overrides(manifest: Path, corpus: Path) -> list[str]:
    return [f"data.train_manifest={manifest}", f"data.dev_manifest={corpus.parent / 'dev.jsonl'}",
            f"data.test_manifest={corpus.parent / 'test.jsonl'}", "trainer.device=cpu"]


def batching_stage(overrides: list[str]) -> None:
    """Read the training manifest and build two epochs' plans, checking they cover it once."""
    from speechprune.commands import compose_config
    from speechprune.data.batching import BucketBatchSampler
    from speechprune.data.features import FeatureExtractor
    from speechprune.data.manifest import load_utterances

    data = compose_config("train", overrides).data
    utterances = load_utterances(data.train_manifest, data)
    features = FeatureExtractor(data.features)
    lengths = [features.frames_for_duration(u.duration) for u in utterances]
    sampler = BucketBatchSampler.from_config(lengths, data.batching, train=True, seed=1)
    for epoch in (0, 1):
        covered = sorted(i for batch in sampler.batches(epoch) for i in batch)
        assert covered == list(range(len(lengths))), f"epoch {epoch} plan does not cover the manifest"


def startup_stage(overrides: list[str], run_dir: str) -> None:
    """`speechprune train`'s set-up, up to the first batch of the first epoch."""
    from speechprune.commands import compose_config
    from speechprune.model.run_dir import RunDirectory
    from speechprune.training.loop import Trainer

    trainer = Trainer(compose_config("train", overrides), RunDirectory(Path(run_dir)))
    next(iter(trainer.data.train_loader()))


def measure(command: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak resident MB, exit status) of `command` run to its end."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.stderr.write(process.stderr.read().decode()[-2000:])
    process.stderr.close()
    return wall, usage.ru_maxrss / 1024, process.returncode  # ru_maxrss: KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=8, help="real recordings the lines share")
    parser.add_argument("--corpus", type=Path, default=REPO / "data/tiny/train.jsonl")
    parser.add_argument("--stage", choices=["batching", "start-up"], help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "batching":
        return batching_stage(args.overrides)
    if args.stage == "start-up":
        return startup_stage(args.overrides, args.run_dir)

    corpus = args.corpus.resolve()
    with tempfile.TemporaryDirectory() as work:
        manifest = Path(work) / "scale.jsonl"
        write_manifest(corpus, args.utterances, args.files, manifest)
        overrides = train_overrides(manifest, corpus)
        stages = {
            "data check": [SPEECHPRUNE, "data", "check", f"manifest={manifest}"],
            "batching": [sys.executable, __file__, "--stage", "batching", *overrides],
            "start-up": [sys.executable, __file__, "--stage", "start-up", "--run-dir",
                         str(Path(work) / "run"), *overrides],
        }
        print(f"{args.utterances} utterances over {args.files} recordings, {os.cpu_count()} CPUs")
        print(f"{'stage':<11} {'wall s':>7} {'budget':>7} {'peak MB':>8} {'budget':>7}")
        over = []
        for name, command in stages.items():
            wall, peak, status = measure(command)
            budget_s, budget_mb = BUDGETS[name]
            if status != 0 or wall > budget_s or peak > budget_mb:
                over.append(name)
            print(f"{name:<11} {wall:>7.1f} {budget_s:>7.0f} {peak:>8.0f} {budget_mb:>7.0f}"
                  + ("" if status == 0 else f"   exit status {status}"), flush=True)
    if over:
        sys.exit(f"over budget: {', '.join(over)}")


if __name__ == "__main__":
    main()
