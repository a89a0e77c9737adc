"""scripts/check_gpu.py, the one-command CUDA check, refuses clearly where there is no GPU."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from training_helpers import REPO


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the script would run")
def test_without_a_gpu_the_script_says_so_and_exits_2():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "check_gpu.py")], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no CUDA device" in result.stdout and "Traceback" not in result.stderr
