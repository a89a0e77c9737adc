import pytest
import torch
from pruning.pruning_fixtures import TinySpeechModel


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These models are tiny: on a shared 2-core machine extra threads only add contention
    (13x slower steps measured), so each test runs single-threaded and restores the setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def gru_model() -> TinySpeechModel:
    """A 2-layer bidirectional GRU model with fixed initial weights."""
    torch.manual_seed(0)
    return TinySpeechModel("gru", bidirectional=True)
