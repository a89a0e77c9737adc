"""SparseRecurrentLayer computes what torch's nn.RNN / nn.GRU / nn.LSTM compute on packed
sequences, with CSR or block-sparse kernels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from speechprune.deploy.block_kernels import BlockSparseMatrix
from speechprune.deploy.kernels import CsrMatrix
from speechprune.deploy.permute_ell import PermuteEllMatrix
from speechprune.deploy.sparse_rnn import SparseRecurrentLayer, fast_sigmoid, fast_tanh
from speechprune.pruning.magnitude import expand_block_mask


def pruned_rnn(kind: str, bidirectional: bool, sparsity: float,
               block_shape: tuple[int, int] = (1, 1)) -> nn.RNNBase:
    """A 12 -> 32 layer with a random `sparsity` share of each weight matrix's blocks zeroed."""
    torch.manual_seed(0)
    if kind in ("gru", "lstm"):
        rnn = (nn.GRU if kind == "gru" else nn.LSTM)(12, 32, batch_first=True,
                                                     bidirectional=bidirectional)
    else:
        rnn = nn.RNN(12, 32, batch_first=True, bidirectional=bidirectional, nonlinearity=kind)
    br, bc = block_shape
    with torch.no_grad():
        for name, param in rnn.named_parameters():
            if name.startswith("weight"):
                rows, cols = param.shape
                kept = torch.rand(-(-rows // br), -(-cols // bc)) >= sparsity
                param.mul_(expand_block_mask(kept, param, block_shape))
    return rnn.eval()


def run_both(rnn: nn.RNNBase, batch: int, parallel: bool, sparse_input: bool
             ) -> tuple[torch.Tensor, torch.Tensor, SparseRecurrentLayer]:
    """(sparse layer output, torch's packed-sequence output, the layer) on a padded batch."""
    x = torch.randn(batch, 25, 12)
    lengths = torch.randint(1, 26, (batch,))
    lengths[0] = 25
    layer = SparseRecurrentLayer(rnn, parallel=parallel, sparse_input=sparse_input)
    with torch.no_grad():
        packed, _ = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=25)
        actual = layer(x, lengths)
    return actual, expected, layer


@pytest.mark.slow
@pytest.mark.parametrize("sparse_input", [False, True])
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("batch", [1, 4, 16])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["gru", "lstm", "tanh", "relu"])
def test_sparse_layer_matches_torch_on_a_padded_batch(kind, bidirectional, batch, parallel,
                                                     sparse_input):
    actual, expected, layer = run_both(pruned_rnn(kind, bidirectional, sparsity=0.9), batch,
                                       parallel, sparse_input)
    # unstructured: permute-ELL where AVX-512 runs it, else CSR; all frames' input projection on
    # several threads: CSR's batch kernel
    assert all(isinstance(m, (CsrMatrix, PermuteEllMatrix)) for m in layer.recurrent)
    if sparse_input and parallel:
        assert isinstance(layer.input_sparse, CsrMatrix)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("kind", ["gru", "lstm", "relu"])
@pytest.mark.parametrize("block_shape", [(4, 4), (8, 1)])
def test_block_pruned_layer_runs_block_kernels_and_matches_torch(block_shape, kind, batch, parallel):
    rnn = pruned_rnn(kind, bidirectional=True, sparsity=0.8, block_shape=block_shape)
    actual, expected, layer = run_both(rnn, batch, parallel, sparse_input=True)
    for matrix in layer.recurrent + [layer.input_sparse]:
        assert isinstance(matrix, BlockSparseMatrix)
        # a 4x4-pruned matrix is also tiled by 2x2 or 4x2 blocks: the largest shape that fits.
        assert matrix.block_shape[0] % block_shape[0] == 0
        assert matrix.block_shape[1] % block_shape[1] == 0
    assert "block-sparse" in layer.kernel_summary
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-4)


def test_lstm_with_projections_is_refused():
    with pytest.raises(ValueError, match="without projections"):
        SparseRecurrentLayer(nn.LSTM(4, 8, batch_first=True, proj_size=2))


def test_fast_gate_functions_stay_within_3e7_of_exact_everywhere():
    x = np.concatenate([np.linspace(-30, 30, 200_001), [0.0, 1e-30, -1e-30, 7.9, -7.9, 1e4]])
    tanh = np.array([fast_tanh(np.float32(v)) for v in x.astype(np.float32)])
    sigmoid = np.array([fast_sigmoid(np.float32(v)) for v in x.astype(np.float32)])
    assert np.abs(tanh - np.tanh(x)).max() < 3e-7
    assert np.abs(sigmoid - 1 / (1 + np.exp(-x))).max() < 3e-7
    assert fast_tanh(np.float32(0.0)) == 0.0 and fast_tanh(np.float32(1e4)) == pytest.approx(1.0)
