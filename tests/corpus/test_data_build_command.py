"""`speechprune data build corpus=tiny ...` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from speechprune.config import CorpusConfig
from speechprune.corpus.build import build_corpus

SPEECHPRUNE = Path(sys.executable).parent / "speechprune"


def build_command(output_dir: Path, hours: float) -> list[str]:
    return [str(SPEECHPRUNE), "data", "build", "corpus=tiny", f"corpus.output_dir={output_dir}",
            f"corpus.target_hours={hours}"]


def run_build(output_dir: Path, hours: float = 0.005) -> subprocess.CompletedProcess:
    return subprocess.run(build_command(output_dir, hours), capture_output=True, text=True,
                          timeout=120, cwd=output_dir.parent)


def test_the_command_builds_a_corpus_then_says_it_is_complete(tmp_path):
    output_dir = tmp_path / "tiny"
    first = run_build(output_dir)
    assert first.returncode == 0, first.stderr
    assert (output_dir / ".complete").is_file()
    info = json.loads((output_dir / "build_info.json").read_text())
    assert info["name"] == "tiny"
    assert all(info["utterances"][split] > 0 for split in ("train", "dev", "test"))

    second = run_build(output_dir)
    assert second.returncode == 0, second.stderr
    assert "already complete" in second.stdout + second.stderr


@pytest.mark.slow
def test_a_killed_build_resumes_to_the_manifests_of_an_uninterrupted_one(tmp_path):
    hours = 0.02
    killed_dir = tmp_path / "killed"
    # Its own session, so the kill reaches the worker processes too.
    process = subprocess.Popen(build_command(killed_dir, hours), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not any(killed_dir.rglob("*.flac")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed_dir / ".complete").exists()

    resumed = run_build(killed_dir, hours)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout

    reference_dir = tmp_path / "reference"
    build_corpus(CorpusConfig(name="tiny", output_dir=str(reference_dir), target_hours=hours))
    for split in ("train", "dev", "test"):
        assert (killed_dir / f"{split}.jsonl").read_text() == \
            (reference_dir / f"{split}.jsonl").read_text()
