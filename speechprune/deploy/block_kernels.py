"""Block-sparse matrix products for matrices pruned in whole blocks (pruning=block).

Format (BlockSparseMatrix): the (rows, cols) matrix is cut into (br, bc) blocks and only blocks
holding a non-zero are stored. Block row I owns the stored blocks indptr[I] .. indptr[I + 1] - 1,
`indices` holds their block columns (ascending), and the block row's values are one dense
(br, K) panel, K = bc * its block count, stored row-major from values[indptr[I] * br * bc].

Kernel ("gather, then dense"): per block row, the pieces of x its blocks read are copied into a
contiguous buffer (one bc-float copy per block), then the panel times that buffer is a dense
product, four rows at a time so that every buffer load feeds four multiply-adds. The
unstructured CSR kernel (kernels.py) is bound by its per-weight gathers; blocks turn the gathers
into copies and leave a vectorized inner loop. Measured at 90% block sparsity, batch 1, one thread
against torch.mv on 1024x1024: 4x4 blocks 5.3x, 8x8 7.9x, 16x16 9.7x (unstructured CSR: 1.8x).

The block shape is a compile-time constant: one set of kernels per shape, compiled on first use
(a few seconds). With br and bc as run-time arguments LLVM neither unrolls the copy nor
vectorizes the dot product, and the same kernel measured 3-4x slower.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
import numba
import numpy as np

from speechprune.deploy.kernels import (CsrMatrix, SparseFormat, SparseKernels,
                                        column_index_dtype, csr_from_dense)
from speechprune.deploy.permute_ell import PermuteEllMatrix, permute_ell_from_dense
from speechprune.deploy.permute_ell import available as permute_ell_available

# Shapes the loader looks for in a pruned matrix, tried largest first. (1, 1) is plain CSR.
BLOCK_SIDES = (32, 16, 8, 4, 2, 1)
# Up to this batch, one block vector product per column beats the batch kernel (at 90% block
# sparsity, batch 16, one thread: 1.9-3.2x of torch.mm column by column, 1.1-1.3x in matmat).
BLOCK_COLUMNWISE_MAX_BATCH = 16
# A block shape is used when its stored blocks are at least this full: explicit zeros inside
# blocks cost work, but a 4x4 block kernel is ~3x faster per stored weight than CSR.
MIN_BLOCK_FILL = 0.75


@dataclass(frozen=True)
class BlockSparseMatrix(SparseFormat):
    """A (rows, cols) float32 matrix of (br, bc) blocks in the panel layout described above."""

    shape: tuple[int, int]
    block_shape: tuple[int, int]
    indptr: np.ndarray   # (rows / br + 1,) uint32
    indices: np.ndarray  # (blocks,) block columns, uint16 or uint32
    values: np.ndarray   # (blocks * br * bc,) float32, one (br, K) panel per block row
    nnz: int             # non-zero weights (stored blocks may hold some zeros)

    @property
    def blocks(self) -> int:
        return int(self.indices.shape[0])

    @property
    def kernels(self) -> SparseKernels:
        return block_kernels(*self.block_shape)

    def to_dense(self) -> np.ndarray:
        rows, cols = self.shape
        br, bc = self.block_shape
        dense = np.zeros((rows // br, br, cols // bc, bc), dtype=np.float32)
        for block_row in range(rows // br):
            start, stop = int(self.indptr[block_row]), int(self.indptr[block_row + 1])
            panel = self.values[start * br * bc:stop * br * bc].reshape(br, stop - start, bc)
            dense[block_row, :, self.indices[start:stop].astype(np.int64), :] = \
                panel.transpose(1, 0, 2)
        return dense.reshape(rows, cols)


def cut_into_blocks(matrix: np.ndarray, block_shape: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (br, bc) blocks of `matrix` (2-D, sides divisible by the block shape) that hold a
    non-zero, in block-row order: (indptr (block rows + 1,) uint32, their block columns,
    the blocks (count, br, bc)). Shared by the kernel format and the export's "bsr" layout."""
    rows, cols = matrix.shape
    br, bc = block_shape
    if br < 1 or bc < 1 or rows % br or cols % bc:
        raise ValueError(f"a {rows}x{cols} matrix cannot be cut into {br}x{bc} blocks")
    blocks = np.asarray(matrix).reshape(rows // br, br, cols // bc, bc).transpose(0, 2, 1, 3)
    kept = (blocks != 0).any(axis=(2, 3))  # (block rows, block cols)
    indptr = np.zeros(rows // br + 1, dtype=np.uint32)
    np.cumsum(kept.sum(axis=1), out=indptr[1:])
    block_rows, block_cols = np.nonzero(kept)
    return indptr, block_cols, blocks[block_rows, block_cols]


def block_sparse_from_dense(matrix: np.ndarray, block_shape: tuple[int, int]) -> BlockSparseMatrix:
    """The blocks of `matrix` (2-D, sides divisible by the block shape) holding a non-zero."""
    rows, cols = matrix.shape
    br, bc = block_shape
    indptr, block_cols, stored = cut_into_blocks(np.asarray(matrix, dtype=np.float32),
                                                 block_shape)
    # Each block row's blocks side by side as one (br, K) panel.
    panels = [stored[indptr[i]:indptr[i + 1]].transpose(1, 0, 2).reshape(-1)
              for i in range(rows // br)]
    values = np.concatenate(panels) if panels else np.zeros(0, dtype=np.float32)
    return BlockSparseMatrix(
        shape=(rows, cols), block_shape=(br, bc), indptr=indptr,
        indices=block_cols.astype(column_index_dtype(cols // bc)),
        values=np.ascontiguousarray(values, dtype=np.float32),
        nnz=int(np.count_nonzero(matrix)))


def block_fill(matrix: np.ndarray, block_shape: tuple[int, int]) -> float:
    """Non-zeros over the weights of the blocks that hold any (1.0 for block-pruned weights)."""
    rows, cols = matrix.shape
    br, bc = block_shape
    nonzero = (np.asarray(matrix) != 0).reshape(rows // br, br, cols // bc, bc)
    kept = int(nonzero.any(axis=(1, 3)).sum())
    return int(nonzero.sum()) / (kept * br * bc) if kept else 0.0


def detect_block_shape(matrix: np.ndarray, min_fill: float = MIN_BLOCK_FILL) -> tuple[int, int]:
    """The largest block shape (sides from BLOCK_SIDES, dividing the matrix) whose stored blocks
    are at least `min_fill` full; (1, 1) when none is, e.g. for unstructured sparsity."""
    rows, cols = matrix.shape
    shapes = sorted(((br, bc) for br in BLOCK_SIDES for bc in BLOCK_SIDES
                     if (br, bc) != (1, 1) and rows % br == 0 and cols % bc == 0),
                    key=lambda s: (s[0] * s[1], s[0]), reverse=True)
    for shape in shapes:
        if block_fill(matrix, shape) >= min_fill:
            return shape
    return (1, 1)


def sparse_from_dense(matrix: np.ndarray) -> CsrMatrix | BlockSparseMatrix | PermuteEllMatrix:
    """The fastest format for a pruned matrix: blocks when its zeros come in blocks; else
    permute-ELL where the CPU has AVX-512 (and a C compiler built its kernel); else CSR."""
    block_shape = detect_block_shape(matrix)
    if block_shape != (1, 1):
        return block_sparse_from_dense(matrix, block_shape)
    if permute_ell_available():
        return permute_ell_from_dense(matrix)
    return csr_from_dense(matrix)


@functools.lru_cache(maxsize=None)
def block_kernels(br: int, bc: int) -> SparseKernels:
    """The four products (vector / batch, one thread / numba's threads) for (br, bc) blocks,
    with the same signatures as the CSR kernels: (indptr, indices, values, x, out)."""
    BR, BC, FOUR = np.uint64(br), np.uint64(bc), np.uint64(4)

    @numba.njit(fastmath=True, nogil=True)
    def gather_pieces(indptr, indices, x, buffer, block_row):  # pragma: no cover - compiled
        """Copy the bc entries of the vector x that each block of `block_row` reads into
        buffer[0:width]; returns (first stored block, width)."""
        start, stop = np.uint64(indptr[block_row]), np.uint64(indptr[block_row + 1])
        j = np.uint64(0)
        for k in range(start, stop):
            base = np.uint64(indices[k]) * BC
            for c in range(BC):
                buffer[j + c] = x[base + c]
            j += BC
        return start, j

    @numba.njit(fastmath=True, nogil=True)
    def vector_rows(indptr, indices, values, x, out, buffer, first, last):  # pragma: no cover
        for block_row in range(np.uint64(first), np.uint64(last)):
            start, width = gather_pieces(indptr, indices, x, buffer, block_row)
            panel = start * BR * BC
            for group in range(BR // FOUR):
                row = panel + group * FOUR * width
                a0 = np.float32(0.0)
                a1 = np.float32(0.0)
                a2 = np.float32(0.0)
                a3 = np.float32(0.0)
                for j in range(width):
                    xj = buffer[j]
                    a0 += values[row + j] * xj
                    a1 += values[row + width + j] * xj
                    a2 += values[row + np.uint64(2) * width + j] * xj
                    a3 += values[row + np.uint64(3) * width + j] * xj
                r = block_row * BR + group * FOUR
                out[r] = a0
                out[r + np.uint64(1)] = a1
                out[r + np.uint64(2)] = a2
                out[r + np.uint64(3)] = a3
            for r in range(BR // FOUR * FOUR, BR):
                row = panel + r * width
                acc = np.float32(0.0)
                for j in range(width):
                    acc += values[row + j] * buffer[j]
                out[block_row * BR + r] = acc

    @numba.njit(fastmath=True, nogil=True)
    def batch_rows(indptr, indices, values, x, out, buffer, first, last):  # pragma: no cover
        batch = np.uint64(out.shape[1])
        for block_row in range(np.uint64(first), np.uint64(last)):
            # gather_pieces's copy, spelled out per entry: its whole-row assignment
            # `buffer[j + c] = x[base + c]` on 2-D arrays made the input projection of 4x4 blocks
            # 1.4x slower (6144x1024 by 100 frames: 7.5 -> 11.9 ms).
            start, stop = np.uint64(indptr[block_row]), np.uint64(indptr[block_row + 1])
            width = (stop - start) * BC
            j = np.uint64(0)
            for k in range(start, stop):
                base = np.uint64(indices[k]) * BC
                for c in range(BC):
                    for b in range(batch):
                        buffer[j + c, b] = x[base + c, b]
                j += BC
            panel = start * BR * BC
            for r in range(BR):
                row = panel + r * width
                target = block_row * BR + r
                for b in range(batch):
                    out[target, b] = np.float32(0.0)
                for j in range(width):
                    value = values[row + j]
                    for b in range(batch):
                        out[target, b] += value * buffer[j, b]

    @numba.njit(fastmath=True, nogil=True)
    def matvec(indptr, indices, values, x, out):  # pragma: no cover - compiled
        buffer = np.empty(x.shape[0], dtype=np.float32)
        vector_rows(indptr, indices, values, x, out, buffer, 0, out.shape[0] // br)

    @numba.njit(fastmath=True, nogil=True)
    def matmat(indptr, indices, values, x, out):  # pragma: no cover - compiled
        buffer = np.empty(x.shape, dtype=np.float32)
        batch_rows(indptr, indices, values, x, out, buffer, 0, out.shape[0] // br)

    # Parallel: block rows in one contiguous chunk per thread, each with its own buffer.
    @numba.njit(fastmath=True, nogil=True, parallel=True)
    def matvec_parallel(indptr, indices, values, x, out):  # pragma: no cover - compiled
        block_rows = out.shape[0] // br
        chunks = numba.get_num_threads()
        for chunk in numba.prange(chunks):
            buffer = np.empty(x.shape[0], dtype=np.float32)
            vector_rows(indptr, indices, values, x, out, buffer, chunk * block_rows // chunks,
                        (chunk + 1) * block_rows // chunks)

    @numba.njit(fastmath=True, nogil=True, parallel=True)
    def matmat_parallel(indptr, indices, values, x, out):  # pragma: no cover - compiled
        block_rows = out.shape[0] // br
        chunks = numba.get_num_threads()
        for chunk in numba.prange(chunks):
            buffer = np.empty(x.shape, dtype=np.float32)
            batch_rows(indptr, indices, values, x, out, buffer, chunk * block_rows // chunks,
                       (chunk + 1) * block_rows // chunks)

    return SparseKernels(matvec, matvec_parallel, matmat, matmat_parallel,
                         BLOCK_COLUMNWISE_MAX_BATCH)
