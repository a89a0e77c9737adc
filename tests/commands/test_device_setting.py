"""A device the machine lacks is one line naming the command's own key, not `trainer.device`."""

import pytest
import torch

from training_helpers import run_cli


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA device")
@pytest.mark.parametrize("command", ["transcribe", "evaluate"])
def test_cuda_on_a_cpu_machine_names_the_device_key(command, tmp_path):
    """Seen to fail: with load_recognizer calling choose_device without key="device" the line
    said "trainer.device=cuda"; without the ValueError in one_line_errors it was a traceback."""
    args = ([str(tmp_path / "model.pt"), str(tmp_path / "a.wav")] if command == "transcribe"
            else [str(tmp_path / "model.pt"), str(tmp_path / "test.jsonl")])
    result = run_cli(command, *args, "device=cuda", f"hydra.run.dir={tmp_path / 'out'}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (f"speechprune {command}: device=cuda but no CUDA device is available; "
                         "use device=cpu")


def test_an_unknown_device_names_the_key_and_the_choices(tmp_path):
    result = run_cli("transcribe", str(tmp_path / "model.pt"), str(tmp_path / "a.wav"),
                     "device=tpu", f"hydra.run.dir={tmp_path / 'out'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "device='tpu': choose 'auto', 'cpu' or 'cuda'" in result.stderr
    assert "trainer.device" not in result.stderr
