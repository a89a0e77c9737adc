"""Inference-time recurrent layers whose hidden-to-hidden product runs on sparse kernels.

At batch 1 a recurrent layer is dominated by the per-time-step product W_hh @ h, a matrix-vector
product that reads the whole matrix every frame. Here it runs as a sparse product, with the gates
of a GRU or LSTM fused into one (gates * hidden, hidden) matrix as torch stores them: block-sparse
(block_kernels.py) when the matrix's zeros come in whole blocks (pruning=block), else
permute-ELL (permute_ell.py, AVX-512) or CSR (kernels.py). The input projections W_ih @ x of all frames are one batched product for both
directions: a dense GEMM (torch), or, for a pruned W_ih, the sparse kernel over all frames at
once, which measured about 2x faster than the GEMM at 90% unstructured sparsity (6144x1024 by
150 frames, one thread).
The whole time loop, product and gate arithmetic, runs inside numba, so no Python runs per frame.
With `parallel`, the two directions of a bidirectional layer run on two threads (one hand-off per
layer); a unidirectional layer splits each product's rows over numba's threads (one barrier per
frame).

Semantics are those of torch's nn.RNN / nn.GRU / nn.LSTM on a packed sequence: zero initial
state, each utterance of a batch runs over its own length (the backward direction starts at its
own last frame), and frames past an utterance's length come out as zeros. Layers on a GPU, LSTMs
with projections and layers too dense to gain keep torch's own (dense) module: the dense
fallback.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from torch import nn

from speechprune.deploy.block_kernels import BlockSparseMatrix, sparse_from_dense
from speechprune.deploy.kernels import CsrMatrix, csr_from_dense, sparse_multiply
from speechprune.deploy.permute_ell import PermuteEllMatrix
from speechprune.model.deepspeech2 import DeepSpeech2

# torch's mode names -> the cell run_direction computes.
CELLS = {"RNN_TANH": 0, "RNN_RELU": 1, "GRU": 2, "LSTM": 3}
SPARSE_MODES = tuple(CELLS)

# The functions below are not cached on disk (cache=True): numba keys a cache on its own file
# only, so after a change to kernels.py a cached caller would jump into stale code (a segfault
# seen here). They compile on first use, a few seconds per process and sparse format.


@numba.njit(fastmath=True, nogil=True)
def _recurrent_products(matvec, matmat, columnwise_max_batch, indptr, indices, values, h, out,
                        active, h_columns, out_columns):  # pragma: no cover - compiled
    """out[b] = W_hh @ h[b] for every utterance b still running (`active[b]`); h (batch, hidden),
    out (batch, rows). Small batches run one vector product per utterance (finished ones are
    skipped); larger ones one batch product through the (hidden, batch) buffers `h_columns`
    and `out_columns`. `matvec`/`matmat` are the sparse format's kernels (kernels.SparseKernels)."""
    batch = h.shape[0]
    if batch <= columnwise_max_batch:
        for b in range(batch):
            if active[b]:
                matvec(indptr, indices, values, h[b], out[b])
        return
    h_columns[:] = h.T
    matmat(indptr, indices, values, h_columns, out_columns)
    out[:] = out_columns.T


@numba.njit(fastmath=True, nogil=True)
def fast_tanh(x):  # pragma: no cover - compiled
    """tanh(x) in float32 as a 13/6 rational function (Eigen's float tanh), saturated outside
    +-7.9; within 3e-7 of the exact value. Unlike a call to libm's tanhf it is plain
    arithmetic, so the loops over hidden units below vectorize."""
    x = min(max(x, np.float32(-7.90531110763549805)), np.float32(7.90531110763549805))
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = p * x2 + np.float32(2.00018790482477e-13)
    p = p * x2 + np.float32(-8.60467152213735e-11)
    p = p * x2 + np.float32(5.12229709037114e-08)
    p = p * x2 + np.float32(1.48572235717979e-05)
    p = p * x2 + np.float32(6.37261928875436e-04)
    p = p * x2 + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = q * x2 + np.float32(1.18534705686654e-04)
    q = q * x2 + np.float32(2.26843463243900e-03)
    q = q * x2 + np.float32(4.89352518554385e-03)
    return p * x / q


@numba.njit(fastmath=True, nogil=True)
def fast_sigmoid(x):  # pragma: no cover - compiled
    return np.float32(0.5) + np.float32(0.5) * fast_tanh(np.float32(0.5) * x)


@numba.njit(fastmath=True, nogil=True)
def _rnn_cell(projected, recurrent, bias_hh, h, out, relu):  # pragma: no cover - compiled
    """One frame of one utterance, all 1-D over hidden units: h = out = act(...)."""
    for j in range(h.shape[0]):
        v = projected[j] + recurrent[j] + bias_hh[j]
        v = max(v, np.float32(0.0)) if relu else fast_tanh(v)
        h[j] = v
        out[j] = v


@numba.njit(fastmath=True, nogil=True)
def _gru_cell(projected, recurrent, bias_hh, h, out):  # pragma: no cover - compiled
    """One frame of one utterance with torch's gate order (reset r, update z, new n):
    r = s(x_r + W_hr h + b_hr), z = s(x_z + W_hz h + b_hz), n = tanh(x_n + r * (W_hn h + b_hn)),
    h' = (1 - z) * n + z * h; all arrays 1-D, the gates concatenated."""
    hidden = h.shape[0]
    for j in range(hidden):
        r = fast_sigmoid(projected[j] + recurrent[j] + bias_hh[j])
        z = fast_sigmoid(projected[hidden + j] + recurrent[hidden + j] + bias_hh[hidden + j])
        n = fast_tanh(projected[2 * hidden + j]
                      + r * (recurrent[2 * hidden + j] + bias_hh[2 * hidden + j]))
        v = (np.float32(1.0) - z) * n + z * h[j]
        h[j] = v
        out[j] = v


@numba.njit(fastmath=True, nogil=True)
def _lstm_cell(projected, recurrent, bias_hh, h, c, out):  # pragma: no cover - compiled
    """One frame of one utterance with torch's gate order (input i, forget f, cell g, output o):
    c' = s(f) * c + s(i) * tanh(g), h' = s(o) * tanh(c'); all arrays 1-D, gates concatenated."""
    hidden = h.shape[0]
    for j in range(hidden):
        i = fast_sigmoid(projected[j] + recurrent[j] + bias_hh[j])
        f = fast_sigmoid(projected[hidden + j] + recurrent[hidden + j] + bias_hh[hidden + j])
        g = fast_tanh(projected[2 * hidden + j] + recurrent[2 * hidden + j]
                      + bias_hh[2 * hidden + j])
        o = fast_sigmoid(projected[3 * hidden + j] + recurrent[3 * hidden + j]
                         + bias_hh[3 * hidden + j])
        cell = f * c[j] + i * g
        c[j] = cell
        v = o * fast_tanh(cell)
        h[j] = v
        out[j] = v


@numba.njit(fastmath=True, nogil=True)
def run_direction(matvec, matmat, columnwise_max_batch, indptr, indices, values, bias_hh,
                  projected, lengths, reverse, cell, out):  # pragma: no cover - compiled
    """One direction of an Elman RNN (h_t = act(x_t + W_hh h_{t-1} + b_hh)), a GRU or an LSTM
    over time; `cell` is a CELLS value, `matvec`/`matmat` the kernels of W_hh's sparse format.

    projected (batch, time, gates * hidden) holds W_ih x_t + b_ih; lengths (batch,) frames;
    out (batch, time, hidden) receives h_t at valid frames (other frames are left untouched).
    The backward direction (`reverse`) starts at each utterance's own last frame."""
    batch, _, gates = projected.shape
    hidden = out.shape[2]
    h = np.zeros((batch, hidden), dtype=np.float32)
    c = np.zeros((batch, hidden), dtype=np.float32)  # LSTM cell state
    recurrent = np.empty((batch, gates), dtype=np.float32)
    h_columns = np.empty((hidden, batch), dtype=np.float32)
    out_columns = np.empty((gates, batch), dtype=np.float32)
    for step in range(lengths.max()):
        active = step < lengths
        _recurrent_products(matvec, matmat, columnwise_max_batch, indptr, indices, values, h,
                            recurrent, active, h_columns, out_columns)
        for b in range(batch):
            if not active[b]:
                continue
            t = lengths[b] - 1 - step if reverse else step
            if cell == 2:
                _gru_cell(projected[b, t], recurrent[b], bias_hh, h[b], out[b, t])
            elif cell == 3:
                _lstm_cell(projected[b, t], recurrent[b], bias_hh, h[b], c[b], out[b, t])
            else:
                _rnn_cell(projected[b, t], recurrent[b], bias_hh, h[b], out[b, t], cell == 1)


# Runs the two directions of a bidirectional layer (its threads start on first use).
DIRECTION_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sparse-rnn")


SparseMatrix = CsrMatrix | BlockSparseMatrix | PermuteEllMatrix


def describe_format(matrix: SparseMatrix) -> str:
    """'CSR', 'permute-ELL' or 'block-sparse 4x4': which kernel a matrix runs."""
    if isinstance(matrix, BlockSparseMatrix):
        return "block-sparse {}x{}".format(*matrix.block_shape)
    if isinstance(matrix, PermuteEllMatrix):
        return "permute-ELL (AVX-512)"
    return "CSR"


def unsupported_reason(rnn: nn.RNNBase) -> str | None:
    """Why SparseRecurrentLayer cannot run `rnn` (None when it can)."""
    if rnn.mode not in SPARSE_MODES:
        return f"mode {rnn.mode}"
    if getattr(rnn, "proj_size", 0):
        return "LSTM with projections"
    if rnn.num_layers != 1 or not rnn.batch_first:
        return "not a single batch_first layer"
    return None


class SparseRecurrentLayer(nn.Module):
    """One nn.RNN, nn.GRU or nn.LSTM layer (uni- or bidirectional, batch_first) for CPU inference.

    forward(x (batch, time, input) float32, lengths (batch,) int64 on the CPU) ->
    (batch, time, directions * hidden) float32, zeros past each length. No autograd.
    """

    def __init__(self, rnn: nn.RNNBase, parallel: bool = False, sparse_input: bool = False):
        super().__init__()
        if unsupported_reason(rnn):
            raise ValueError(f"SparseRecurrentLayer runs single-layer batch_first {SPARSE_MODES} "
                             f"without projections, got {rnn.mode} with {rnn.num_layers} layers "
                             f"({unsupported_reason(rnn)})")
        self.mode = rnn.mode
        self.hidden_size = rnn.hidden_size
        self.bidirectional = rnn.bidirectional
        self.parallel = parallel
        suffixes = ["_l0", "_l0_reverse"] if rnn.bidirectional else ["_l0"]
        params = dict(rnn.named_parameters())
        with torch.no_grad():
            # Both directions' input projections as one GEMM: (directions * gates, input).
            self.register_buffer("weight_ih", torch.cat(
                [params["weight_ih" + s].detach().float() for s in suffixes]).contiguous())
            self.register_buffer("bias_ih", torch.cat(
                [params["bias_ih" + s].detach().float() for s in suffixes]).contiguous())
        # Input projection of all frames as a sparse product, when W_ih is pruned enough to gain.
        self.input_sparse: SparseMatrix | None = None
        if sparse_input:
            weight_ih = self.weight_ih.cpu().numpy()
            self.input_sparse = sparse_from_dense(weight_ih)
            if parallel and isinstance(self.input_sparse, PermuteEllMatrix):
                # All frames at once on several threads: CSR's batch kernel is the faster one
                # (6144x1024 by 100 frames, 2 threads: 2.4-2.5x of dense against 2.0-2.1x for
                # permute-ELL's four-vector kernel; on one thread permute-ELL wins, 2.7x to 2.4x).
                self.input_sparse = csr_from_dense(weight_ih)
        self.recurrent: list[SparseMatrix] = [
            sparse_from_dense(params["weight_hh" + s].detach().float().cpu().numpy())
            for s in suffixes]
        self.bias_hh: list[np.ndarray] = [
            params["bias_hh" + s].detach().float().cpu().numpy().copy() for s in suffixes]

    @property
    def recurrent_density(self) -> float:
        """Share of non-zero hidden-to-hidden weights over all directions."""
        return sum(m.nnz for m in self.recurrent) / sum(m.shape[0] * m.shape[1] for m in self.recurrent)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, time, _ = x.shape
        gates = self.recurrent[0].shape[0]
        if self.input_sparse is not None:
            frames = np.ascontiguousarray(x.float().reshape(batch * time, -1).cpu().numpy().T)
            projected = sparse_multiply(self.input_sparse, frames, parallel=self.parallel).T
            projected = (projected + self.bias_ih.cpu().numpy()).reshape(batch, time, -1)
        else:
            projected = torch.nn.functional.linear(x.float(), self.weight_ih, self.bias_ih)
            projected = projected.cpu().numpy()
        lengths_np = lengths.to(torch.int64).cpu().numpy()
        directions = len(self.recurrent)
        out = np.zeros((directions, batch, time, self.hidden_size), dtype=np.float32)

        def run_one(d: int, parallel_product: bool) -> None:
            matrix = self.recurrent[d]
            kernels = matrix.kernels
            matvec, matmat = ((kernels.matvec_parallel, kernels.matmat_parallel)
                              if parallel_product else (kernels.matvec, kernels.matmat))
            inputs = np.ascontiguousarray(projected[:, :, d * gates:(d + 1) * gates])
            run_direction(matvec, matmat, kernels.columnwise_max_batch, matrix.indptr,
                          matrix.indices, matrix.values, self.bias_hh[d], inputs, lengths_np,
                          d == 1, CELLS[self.mode], out[d])

        if self.parallel and directions == 2:
            # The two directions are independent: one thread each (the numba functions release
            # the GIL), synchronized once per layer instead of once per time step.
            list(DIRECTION_POOL.map(lambda d: run_one(d, False), range(2)))
        else:
            for d in range(directions):
                run_one(d, self.parallel)
        result = np.concatenate(list(out), axis=-1) if directions == 2 else out[0]
        return torch.from_numpy(result).to(x.dtype)

    @property
    def kernel_summary(self) -> str:
        """Which kernels the layer runs, e.g. 'recurrent block-sparse 4x4, input dense'."""
        recurrent = describe_format(self.recurrent[0])
        inputs = describe_format(self.input_sparse) if self.input_sparse is not None else "dense"
        return f"recurrent {recurrent}, input {inputs}"

    def extra_repr(self) -> str:
        directions = "bidirectional" if self.bidirectional else "unidirectional"
        return (f"{self.mode.lower()} hidden {self.hidden_size} {directions}, "
                f"recurrent density {self.recurrent_density:.3f}, {self.kernel_summary}, "
                f"parallel={self.parallel}")


class SparseDeepSpeech2(DeepSpeech2):
    """DeepSpeech2 whose recurrent layers may be SparseRecurrentLayer or Int8RecurrentLayer;
    same forward contract."""

    def _run_rnn(self, rnn: nn.Module, x: torch.Tensor, lengths_cpu: torch.Tensor) -> torch.Tensor:
        if isinstance(rnn, nn.RNNBase):
            return super()._run_rnn(rnn, x, lengths_cpu)
        # A SparseRecurrentLayer or int8_rnn.Int8RecurrentLayer: forward(x, lengths).
        out = rnn(x, lengths_cpu)
        if self.bidirectional and self.merge == "sum":
            forward_half, backward_half = out.chunk(2, dim=-1)
            out = forward_half + backward_half
        return out


def sparsify_recurrent_layers(model: SparseDeepSpeech2, min_sparsity: float,
                              parallel: bool = False) -> list[str]:
    """Swap each recurrent layer of `model` whose hidden-to-hidden matrices are at least
    `min_sparsity` zeros (0..1) for a SparseRecurrentLayer, in place; the others (denser layers,
    LSTMs with projections, or any layer when the model is not on the CPU) keep torch's dense
    kernels. The input projection of a swapped layer runs sparse too when W_ih is at least
    `min_sparsity` zeros. Returns one line per recurrent layer saying which kernels it runs."""
    kernels = []
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    for i, rnn in enumerate(model.rnns):
        hh = [p for name, p in rnn.named_parameters() if name.startswith("weight_hh")]
        sparsity = 1.0 - sum(int(torch.count_nonzero(p)) for p in hh) / sum(p.numel() for p in hh)
        ih = [p for name, p in rnn.named_parameters() if name.startswith("weight_ih")]
        input_sparsity = 1.0 - sum(int(torch.count_nonzero(p)) for p in ih) / sum(p.numel() for p in ih)
        unsupported = unsupported_reason(rnn)
        if on_cpu and not unsupported and sparsity >= min_sparsity:
            layer = SparseRecurrentLayer(rnn, parallel=parallel,
                                         sparse_input=input_sparsity >= min_sparsity)
            model.rnns[i] = layer
            kernels.append(f"rnns.{i}: {layer.kernel_summary} ({sparsity:.1%} / "
                           f"{input_sparsity:.1%} zeros)")
        else:
            why = ("not on the CPU" if not on_cpu else unsupported
                   or f"only {sparsity:.1%} zeros < {min_sparsity:.0%}")
            kernels.append(f"rnns.{i}: dense torch ({why})")
    return kernels
