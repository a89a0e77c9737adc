"""Fixtures shared across the test suite: a micro corpus of real synthesized speech."""

from __future__ import annotations

from pathlib import Path

import pytest

from training_helpers import TINY_MODEL, compose_train, corpus_overrides

from speechprune.config import CorpusConfig


def pytest_report_header(config) -> list[str]:
    """Which kernel levels this run tests (the others skip) and on which CPU."""
    import platform

    from speechprune.deploy import native

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return [f"speechprune {native.describe_levels()}", f"CPU: {cpu}"]


# A test that takes longer than this without the `slow` marker is named at the end of the run
# (tests over about 5 s on a quiet machine carry it; the margin absorbs a loaded one),
# so `make test-fast` (-m "not slow") stays quick as tests are added.
SLOW_SECONDS = 8.0


def pytest_terminal_summary(terminalreporter) -> None:
    unmarked = sorted(
        {report.nodeid.split("[")[0]
         for reports in terminalreporter.stats.values() for report in reports
         if getattr(report, "when", None) in ("setup", "call")
         and report.duration > SLOW_SECONDS and "slow" not in report.keywords})
    if unmarked:
        terminalreporter.write_line(
            f"over {SLOW_SECONDS:g} s without @pytest.mark.slow: " + ", ".join(unmarked))


@pytest.fixture(scope="session")
def micro_corpus(tmp_path_factory) -> Path:
    """A few dozen seconds of the `tiny` domain, synthesized by the real corpus builder once
    per test session (per xdist worker): train/dev/test manifests with FLAC audio."""
    from speechprune.corpus.build import build_corpus

    output_dir = tmp_path_factory.mktemp("micro_corpus")
    result = build_corpus(CorpusConfig(name="tiny", output_dir=str(output_dir),
                                       target_hours=0.02, workers=2, seed=7))
    assert result.complete
    return output_dir


@pytest.fixture(scope="session")
def trained_run(micro_corpus, tmp_path_factory) -> Path:
    """A run directory of a tiny model trained for two epochs on the micro corpus."""
    from speechprune.model.run_dir import RunDirectory
    from speechprune.training.loop import train

    run_dir = tmp_path_factory.mktemp("trained_run")
    cfg = compose_train(TINY_MODEL + corpus_overrides(micro_corpus) + ["trainer.epochs=2"])
    train(cfg, RunDirectory(run_dir))
    return run_dir


@pytest.fixture(scope="session")
def domain_lm(tmp_path_factory):
    """A KenLM model of a small text domain (tests/lm/lm_test_support.py), built once per
    session: for the language-model tests and the decoder-weight tuning tests."""
    from lm.lm_test_support import build_domain_lm

    return build_domain_lm(tmp_path_factory.mktemp("domain_lm"))
