"""`speechprune train` and `speechprune evaluate` under data.bad_input=error over a manifest that
holds a bad audio file: one line on stderr naming the manifest line and the file, exit status 1,
no traceback, whether the file is read in the main process or in a DataLoader worker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from speech_helpers import write_faulty_copies
from training_helpers import TINY_MODEL, compose_train, run_cli

from speechprune.data.manifest import read_jsonl, write_jsonl
from speechprune.model.run_dir import RunDirectory
from speechprune.training.loop import train

WORKERS = [0, 2]


def poisoned_manifest(micro_corpus: Path, folder: Path, name: str) -> tuple[Path, Path]:
    """`folder`/`name`: three good utterances, then (line 4) a copy of the first whose audio
    holds NaN samples; returns the manifest and the bad audio file."""
    good = read_jsonl(micro_corpus / "train.jsonl")[:3]
    bad_audio = write_faulty_copies(Path(good[0].audio_filepath), folder)["non_finite"]
    manifest = folder / name
    write_jsonl(good + [replace(good[0], audio_filepath=str(bad_audio))], manifest)
    return manifest, bad_audio


def assert_one_line_error(result, command: str, manifest: Path, bad_audio: Path) -> None:
    """Exit status 1 and, last on stderr, the one line naming the manifest line and the file."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "DataLoader worker" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"speechprune {command}: {manifest}:4: {bad_audio}: the audio holds "), last
    assert last.endswith("non-finite samples (NaN or infinite); re-encode the file from its "
                         "source. Fix or remove the manifest line, or set data.bad_input=skip"), last


@pytest.mark.slow
@pytest.mark.parametrize("workers", WORKERS)
def test_train_stops_on_nan_audio_with_one_line_naming_the_manifest_line(
        micro_corpus, tmp_path, workers):
    """Seen to fail: one_line_errors without its BadUtteranceError catch (a traceback, both
    worker counts); without unwrapping the worker's exception (workers=2: the line was "Caught
    BadUtteranceError in DataLoader worker process 0." and the worker's traceback followed);
    without closing the open progress bar first (the error was not a line of its own)."""
    manifest, bad_audio = poisoned_manifest(micro_corpus, tmp_path, "train.jsonl")
    test = micro_corpus / "test.jsonl"
    result = run_cli("train", *TINY_MODEL, f"data.train_manifest={manifest}",
                     f"data.dev_manifest={test}", f"data.test_manifest={test}",
                     "trainer.epochs=1", "data.bad_input=error",
                     f"data.batching.num_workers={workers}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(result, "train", manifest, bad_audio)


@pytest.fixture(scope="module", params=WORKERS, ids=lambda workers: f"workers={workers}")
def strict_run(request, micro_corpus, tmp_path_factory) -> Path:
    """A tiny model trained on good audio with data.bad_input=error and
    data.batching.num_workers=<param>, settings `speechprune evaluate` takes from the model."""
    run_dir = tmp_path_factory.mktemp("strict_run")
    test = micro_corpus / "test.jsonl"
    cfg = compose_train(TINY_MODEL + [
        f"data.train_manifest={micro_corpus / 'train.jsonl'}", f"data.dev_manifest={test}",
        f"data.test_manifest={test}", "trainer.epochs=1", "data.bad_input=error",
        f"data.batching.num_workers={request.param}"])
    train(cfg, RunDirectory(run_dir))
    return run_dir


@pytest.mark.slow
def test_evaluate_stops_on_nan_audio_with_one_line_naming_the_manifest_line(
        strict_run, micro_corpus, tmp_path):
    """Seen to fail: one_line_errors without its BadUtteranceError catch (a traceback, both
    worker counts); without unwrapping the worker's exception (workers=2); without closing the
    open progress bar first (the line began with "evaluating test.jsonl:   0%")."""
    manifest, bad_audio = poisoned_manifest(micro_corpus, tmp_path, "test.jsonl")
    result = run_cli("evaluate", str(strict_run), str(manifest), f"output_dir={tmp_path / 'out'}")
    assert_one_line_error(result, "evaluate", manifest, bad_audio)
    assert not (tmp_path / "out" / "summary.json").exists()
