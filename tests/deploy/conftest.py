"""Fixtures for the deploy tests: small pruned training checkpoints of every recurrent kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from speechprune.commands import compose_config
from speechprune.config import as_dict
from speechprune.data.text import Alphabet
from speechprune.model.checkpoint import model_checkpoint, save_checkpoint
from speechprune.model.deepspeech2 import DeepSpeech2
from speechprune.pruning.magnitude import expand_block_mask

SMALL_MODEL = ["model.conv_layers=1", "model.conv_channels=[4]", "model.conv_kernels=[[5,11]]",
               "model.conv_strides=[[2,4]]", "model.hidden_size=40", "model.num_layers=2"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def prune_randomly(model: torch.nn.Module, sparsity: float, seed: int = 0,
                   block_shape: tuple[int, int] = (1, 1)) -> None:
    """Zero a random `sparsity` share of the (br, bc) blocks of every weight matrix of the
    recurrent layers and head, as a finished pruning run leaves them (exact zeros in the dense
    tensors; blocks at the edges of a matrix are cut short, as pruning=block cuts them)."""
    generator = torch.Generator().manual_seed(seed)
    br, bc = block_shape
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2 and ("rnns." in name or name.startswith("fc.")):
                rows, cols = param.shape
                kept = torch.rand(-(-rows // br), -(-cols // bc), generator=generator) >= sparsity
                param.mul_(expand_block_mask(kept, param, block_shape))


def write_checkpoint(path: Path, rnn_type: str, bidirectional: bool, sparsity: float,
                     global_stats: bool = False, seed: int = 0,
                     block_shape: tuple[int, int] = (1, 1)) -> Path:
    """A training checkpoint in the format `speechprune train` writes, of a random model
    (batch-norm statistics moved off their defaults so that they matter) pruned to `sparsity`."""
    overrides = SMALL_MODEL + [f"model.rnn_type={rnn_type}",
                               f"model.bidirectional={str(bidirectional).lower()}"]
    if global_stats:
        overrides.append("data.features.normalize=global")
    cfg = compose_config("train", overrides)
    alphabet = Alphabet.from_config(cfg.data.text)
    torch.manual_seed(seed)
    num_features = 161
    model = DeepSpeech2(cfg.model, num_features, len(alphabet))
    prune_randomly(model, sparsity, seed, block_shape)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "running_mean"):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    stats = None
    if global_stats:
        stats = {"kind": "spectrogram", "num_features": num_features, "frames": 1000,
                 "mean": torch.randn(num_features), "std": torch.rand(num_features) + 0.5}
    save_checkpoint(model_checkpoint(as_dict(cfg), alphabet.symbols, model.state_dict(), stats),
                    path)
    return path


@pytest.fixture
def speech_like_wav(tmp_path) -> Path:
    """1.2 s of 16 kHz audio: a gliding harmonic tone in noise, written with soundfile."""
    rate = 16000
    t = np.arange(int(1.2 * rate)) / rate
    rng = np.random.default_rng(3)
    pitch = 120 + 60 * t
    wave = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / rate) / k for k in range(1, 6))
    wave = 0.3 * wave + 0.02 * rng.standard_normal(t.shape)
    path = tmp_path / "speech_like.wav"
    soundfile.write(path, wave.astype(np.float32), rate)
    return path


@pytest.fixture
def make_checkpoint():
    """`write_checkpoint` for test functions (conftest modules are not importable)."""
    return write_checkpoint
