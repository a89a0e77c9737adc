"""SparseRecurrentLayer computes what torch's nn.RNN / nn.GRU compute on packed sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from speechprune.deploy.sparse_rnn import SparseRecurrentLayer, fast_sigmoid, fast_tanh


def pruned_rnn(kind: str, bidirectional: bool, sparsity: float) -> nn.RNNBase:
    torch.manual_seed(0)
    rnn = (nn.GRU(12, 32, batch_first=True, bidirectional=bidirectional) if kind == "gru" else
           nn.RNN(12, 32, batch_first=True, bidirectional=bidirectional, nonlinearity=kind))
    with torch.no_grad():
        for name, param in rnn.named_parameters():
            if name.startswith("weight"):
                param.mul_(torch.rand(param.shape) >= sparsity)
    return rnn.eval()


@pytest.mark.parametrize("sparse_input", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("batch", [1, 4, 16])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["gru", "tanh", "relu"])
def test_sparse_layer_matches_torch_on_a_padded_batch(kind, bidirectional, batch, parallel,
                                                     sparse_input):
    rnn = pruned_rnn(kind, bidirectional, sparsity=0.9)
    x = torch.randn(batch, 25, 12)
    lengths = torch.randint(1, 26, (batch,))
    lengths[0] = 25
    with torch.no_grad():
        packed, _ = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=25)
        actual = SparseRecurrentLayer(rnn, parallel=parallel, sparse_input=sparse_input)(x, lengths)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


def test_lstm_is_refused_with_the_supported_kinds_named():
    with pytest.raises(ValueError, match="GRU"):
        SparseRecurrentLayer(nn.LSTM(4, 8, batch_first=True))


def test_fast_gate_functions_stay_within_3e7_of_exact_everywhere():
    x = np.concatenate([np.linspace(-30, 30, 200_001), [0.0, 1e-30, -1e-30, 7.9, -7.9, 1e4]])
    tanh = np.array([fast_tanh(np.float32(v)) for v in x.astype(np.float32)])
    sigmoid = np.array([fast_sigmoid(np.float32(v)) for v in x.astype(np.float32)])
    assert np.abs(tanh - np.tanh(x)).max() < 3e-7
    assert np.abs(sigmoid - 1 / (1 + np.exp(-x))).max() < 3e-7
    assert fast_tanh(np.float32(0.0)) == 0.0 and fast_tanh(np.float32(1e4)) == pytest.approx(1.0)
