"""Inference-time recurrent and linear layers with int8 weights on the C kernels (int8.py).

A recurrent layer's two costs are both int8 products: per direction, the input projection
W_ih x_t of all frames (one product with T columns) and, per frame, the recurrent product
W_hh h_{t-1}. Each runs in the layout that timed faster on this machine (sparse or dense, see
int8.fastest); the whole time loop of a direction, products and gate arithmetic, is one C call.
With `parallel`, each direction of a bidirectional layer projects and runs on its own thread (the
C calls release the GIL): each thread streams only its own direction's W_ih, where splitting the
frames would have both threads stream all of it, and the projection products are bound by that
traffic. A unidirectional layer splits its frames between the two threads instead.

Semantics are those of torch's nn.RNN / nn.GRU / nn.LSTM on a packed sequence, as in
sparse_rnn.SparseRecurrentLayer: zero initial state, each utterance over its own length, zeros
past it. What changes is rounding: weights are int8 per row and every activation vector is
quantized to int8 with its own scale before each product.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from speechprune.deploy import int8
from speechprune.deploy.sparse_rnn import unsupported_reason

# Frames timed when choosing a layout for the input projection: long enough to reach the batch
# kernel's steady state, short enough to keep loading quick.
PROJECTION_TIMING_COLUMNS = 64
DIRECTION_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="int8-rnn")

QuantizedWeights = dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (q, scales)


def quantize_weights(module: nn.Module) -> QuantizedWeights:
    """(q, scales) of every weight matrix of `module` (a recurrent layer or a linear one), for
    modules that did not come from an int8 export."""
    return {name: int8.quantize_rows(p.detach().float().cpu().numpy())
            for name, p in module.named_parameters() if name.startswith("weight")}


class Int8RecurrentLayer(nn.Module):
    """One single-layer batch_first nn.RNN / nn.GRU / nn.LSTM (no projections) for CPU inference.

    forward(x (batch, time, input) float32, lengths (batch,) int64 on the CPU) ->
    (batch, time, directions * hidden) float32, zeros past each length. No autograd.
    `weights`: the (q, scales) of weight_ih_l0, weight_hh_l0 (and _reverse), as an int8 export
    stores them; biases come from `rnn`.
    """

    def __init__(self, rnn: nn.RNNBase, weights: QuantizedWeights, level: str,
                 parallel: bool = False):
        super().__init__()
        if unsupported_reason(rnn):
            raise ValueError(f"Int8RecurrentLayer cannot run this layer: {unsupported_reason(rnn)}")
        self.mode = rnn.mode
        self.hidden_size = rnn.hidden_size
        self.bidirectional = rnn.bidirectional
        self.parallel = parallel
        self.level = level
        suffixes = ["_l0", "_l0_reverse"] if rnn.bidirectional else ["_l0"]
        # With two threads a bidirectional layer gives each direction its own thread; a
        # unidirectional one has a single direction, so its projection splits the frames.
        self.split_projection_frames = parallel and not rnn.bidirectional
        self.input = [int8.fastest(*weights["weight_ih" + s], level, PROJECTION_TIMING_COLUMNS,
                                   2 if self.split_projection_frames else 1) for s in suffixes]
        self.recurrent = [int8.fastest(*weights["weight_hh" + s], level, 1) for s in suffixes]
        params = dict(rnn.named_parameters())
        self.bias_ih, self.bias_hh = ([np.ascontiguousarray(
            params[name + s].detach().float().cpu().numpy()) for s in suffixes]
            for name in ("bias_ih", "bias_hh"))
        self.input_density = _density(self.input)
        self.recurrent_density = _density(self.recurrent)

    def _project(self, d: int, frames: np.ndarray) -> np.ndarray:
        """Direction d's W_ih x + b_ih of frames (n, input) -> (n, gates * hidden)."""
        matrix, bias = self.input[d], self.bias_ih[d]
        out = np.empty((frames.shape[0], matrix.shape[0]), dtype=np.float32)
        if self.split_projection_frames and frames.shape[0] >= 2:
            half = frames.shape[0] // 2
            list(DIRECTION_POOL.map(lambda part: int8.linear(matrix, frames[part], bias, out[part]),
                                    [slice(0, half), slice(half, None)]))
        else:
            int8.linear(matrix, frames, bias, out)
        return out

    @torch.no_grad()
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, time, _ = x.shape
        directions = len(self.recurrent)
        hidden = self.hidden_size
        inputs = x.detach().float().cpu().numpy()
        out = np.zeros((batch, time, directions * hidden), dtype=np.float32)
        for b, length in enumerate(lengths.tolist()):
            frames = np.ascontiguousarray(inputs[b, :length])

            def run(d: int, b: int = b, length: int = length, frames=frames) -> None:
                int8.run_direction(self.recurrent[d], self.mode, self.bias_hh[d],
                                   self._project(d, frames), d == 1,
                                   out[b, :length, d * hidden:(d + 1) * hidden])

            if self.parallel and directions == 2:
                list(DIRECTION_POOL.map(run, range(2)))
            else:
                for d in range(directions):
                    run(d)
        return torch.from_numpy(out).to(x.dtype)

    @property
    def kernel_summary(self) -> str:
        """Which kernels the layer runs, e.g. 'recurrent int8 unstructured (16x128 lookups),
        input int8 dense'."""
        return (f"recurrent {self.recurrent[0].describe()}, input {self.input[0].describe()}, "
                f"{self.level}")

    def extra_repr(self) -> str:
        directions = "bidirectional" if self.bidirectional else "unidirectional"
        return (f"{self.mode.lower()} hidden {self.hidden_size} {directions}, recurrent density "
                f"{self.recurrent_density:.3f}, {self.kernel_summary}, parallel={self.parallel}")


def _density(matrices: list[int8.PackedInt8Matrix]) -> float:
    return sum(m.nnz for m in matrices) / sum(m.shape[0] * m.shape[1] for m in matrices)


class Int8Linear(nn.Module):
    """nn.Linear on the int8 kernels: forward(x (..., in) float32) -> (..., out) float32."""

    def __init__(self, linear: nn.Linear, weights: tuple[np.ndarray, np.ndarray], level: str):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.level = level
        self.weight = int8.fastest(*weights, level, PROJECTION_TIMING_COLUMNS)
        self.bias = (None if linear.bias is None
                     else np.ascontiguousarray(linear.bias.detach().float().cpu().numpy()))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = np.ascontiguousarray(x.detach().float().cpu().numpy().reshape(-1, self.in_features))
        out = int8.linear(self.weight, frames, self.bias)
        return torch.from_numpy(out.reshape(*x.shape[:-1], self.out_features)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}, {self.weight.describe()}, {self.level}"
