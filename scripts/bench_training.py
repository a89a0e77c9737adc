"""Training throughput and the share of step time spent waiting for data.

Trains the quickstart model on the tiny corpus for a fixed number of steps and reports audio
seconds trained per wall second and the fraction of wall time the loop waited for the
DataLoader (target: under 10%), for each DataLoader worker count, side by side in one run.

    .venv/bin/python scripts/bench_training.py [--steps 30] [--workers 0 1 2] [overrides ...]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from speechprune.commands import compose_config
from speechprune.model.run_dir import RunDirectory
from speechprune.training.loop import Trainer


def measure(overrides: list[str], steps: int) -> tuple[float, float, int]:
    """(audio s per wall s, data wait fraction, batches) over `steps` training steps."""
    cfg = compose_config("train", ["experiment=quickstart", f"trainer.max_steps={steps}",
                                   "trainer.log_every_steps=1000", *overrides])
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, RunDirectory(Path(run_dir)))
        trainer.train_epoch()
        state = trainer.state
    return state.audio_seconds / state.train_seconds, state.data_wait_seconds / state.train_seconds, state.step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("overrides", nargs="*", help="extra `speechprune train` overrides")
    args = parser.parse_args()
    print(f"{'workers':>7} {'steps':>5} {'audio s / s':>11} {'data wait':>9}")
    for workers in args.workers:
        throughput, wait, steps = measure([f"data.batching.num_workers={workers}", *args.overrides],
                                          args.steps)
        print(f"{workers:>7} {steps:>5} {throughput:>11.1f} {100 * wait:>8.1f}%", flush=True)


if __name__ == "__main__":
    main()
