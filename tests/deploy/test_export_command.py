"""`speechprune export <checkpoint> out=<file>` writes the file and prints the size saving."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_export(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "speechprune"), "export", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_export_command_writes_a_loadable_file_and_reports_its_size(tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9)
    result = run_export(str(checkpoint), f"out={tmp_path / 'model.spx'}", "values=fp16")
    assert result.returncode == 0, result.stderr
    assert "smaller" in result.stdout and "dense float32 model" in result.stdout
    assert (tmp_path / "model.spx").stat().st_size < checkpoint.stat().st_size / 8


def test_export_command_names_a_missing_source(tmp_path):
    result = run_export(str(tmp_path / "nowhere"), f"out={tmp_path / 'model.spx'}")
    assert result.returncode != 0
    assert "no such checkpoint file or run directory" in result.stderr


@pytest.mark.slow
def test_export_command_writes_int8_and_onnx_files(tmp_path, make_checkpoint):
    checkpoint = make_checkpoint(tmp_path / "best.pt", "gru", True, sparsity=0.9)
    int8 = run_export(str(checkpoint), f"out={tmp_path / 'model.spx'}", "values=int8")
    assert int8.returncode == 0, int8.stderr
    assert "int8 values" in int8.stdout
    onnx = run_export(str(checkpoint), f"out={tmp_path / 'model.onnx'}", "format=onnx")
    assert onnx.returncode == 0, onnx.stderr
    assert "ONNX stores every tensor dense" in onnx.stdout and (tmp_path / "model.onnx").is_file()
    wrong = run_export(str(checkpoint), f"out={tmp_path / 'x'}", "format=tflite")
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines()[-1] == (
        "speechprune export: format must be 'speechprune' or 'onnx', got 'tflite'")
