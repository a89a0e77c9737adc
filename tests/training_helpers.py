"""Helpers (importable from any test module) to run `speechprune train` on the micro corpus with a model small enough for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from speechprune.commands import compose_config

REPO = Path(__file__).resolve().parents[1]

# A model of a few thousand parameters: one small convolution, one narrow GRU layer.
TINY_MODEL = ["model.conv_layers=1", "model.conv_channels=[4]", "model.conv_kernels=[[5,11]]",
              "model.conv_strides=[[2,4]]", "model.hidden_size=24", "model.num_layers=1",
              "data.batching.num_workers=0", "data.batching.max_frames_per_batch=3000",
              "trainer.log_every_steps=1", "trainer.threads=1"]


def corpus_overrides(corpus: Path) -> list[str]:
    return [f"data.train_manifest={corpus}/train.jsonl", f"data.dev_manifest={corpus}/dev.jsonl",
            f"data.test_manifest={corpus}/test.jsonl",
            f"++data.extra_test_manifests.unseen_voices={corpus}/unseen_voices.jsonl"]


def compose_train(overrides: list[str]):
    """The config `speechprune train <overrides>` would run with."""
    return compose_config("train", overrides)


def run_cli(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run the real console script in a subprocess (one torch thread, like the tests)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "speechprune"), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                          **kwargs)
