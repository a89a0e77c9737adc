"""Sparse matrix products for the per-time-step recurrent product (numba, CPU, float32): the CSR
format for unstructured sparsity, and the common interface (SparseKernels, sparse_multiply) that
block_kernels.py's block-sparse format shares.

The matrix is held in CSR with *unsigned* indices: uint16 columns when the matrix has at most
65,536 columns, else uint32; uint32 row pointers (uint64 past 2**32 non-zeros). Unsigned
indices matter for speed, not only size: with signed ones numba guards every `x[idx[k]]`
against negative (wrap-around) indices, and that guard kept LLVM from unrolling the gather loop
(measured 0.36 vs 1.2 ns per non-zero on a Zen 3 machine). `fastmath` lets LLVM
reassociate the row sum into several independent accumulators.

Shapes: a matrix is (rows, cols). Vectors are (cols,) -> (rows,); a batch is held transposed,
x (cols, batch) -> out (rows, batch), so the innermost loop runs over contiguous batch entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numba
import numpy as np
import torch

UINT16_COLUMNS = 1 << 16  # column indices up to 65,535 fit uint16


class SparseKernels(NamedTuple):
    """A sparse format's compiled products, all called (indptr, indices, values, x, out):
    vector x (cols,) -> out (rows,), or batch x (cols, batch) -> out (rows, batch); one thread,
    or rows split over numba's threads."""

    matvec: Callable
    matvec_parallel: Callable
    matmat: Callable
    matmat_parallel: Callable
    columnwise_max_batch: int  # up to this batch, one matvec per column beats matmat


class SparseFormat:
    """What every sparse format offers (fields `shape`, `indptr`, `indices`, `values`, `nnz`
    come from the dataclass that derives from it)."""

    @property
    def density(self) -> float:
        rows, cols = self.shape
        return self.nnz / max(rows * cols, 1)

    @property
    def nbytes(self) -> int:
        """Bytes the kernel reads per product (values, indices, row pointers)."""
        return self.indptr.nbytes + self.indices.nbytes + self.values.nbytes


@dataclass(frozen=True)
class CsrMatrix(SparseFormat):
    """A (rows, cols) float32 matrix in CSR: `indptr` (rows + 1,), `indices` and `values` (nnz,)."""

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    @property
    def kernels(self) -> SparseKernels:
        return CSR_KERNELS

    def to_dense(self) -> np.ndarray:
        rows, cols = self.shape
        dense = np.zeros((rows, cols), dtype=np.float32)
        row_of = np.repeat(np.arange(rows), np.diff(self.indptr.astype(np.int64)))
        dense[row_of, self.indices.astype(np.int64)] = self.values
        return dense


def column_index_dtype(cols: int) -> np.dtype:
    """The smallest unsigned type that holds every column index of a `cols`-wide matrix."""
    return np.dtype(np.uint16) if cols <= UINT16_COLUMNS else np.dtype(np.uint32)


def row_pointer_dtype(nnz: int) -> np.dtype:
    return np.dtype(np.uint32) if nnz < (1 << 32) else np.dtype(np.uint64)


def csr_from_dense(matrix: np.ndarray) -> CsrMatrix:
    """CSR of the non-zero entries of a 2-D array (values cast to float32)."""
    if matrix.ndim != 2:
        raise ValueError(f"csr_from_dense needs a 2-D matrix, got shape {matrix.shape}")
    rows, cols = matrix.shape
    row_index, col_index = np.nonzero(matrix)  # row-major order, as CSR wants
    counts = np.bincount(row_index, minlength=rows)
    nnz = int(row_index.shape[0])
    indptr = np.zeros(rows + 1, dtype=row_pointer_dtype(nnz))
    np.cumsum(counts, out=indptr[1:])
    return CsrMatrix(
        shape=(rows, cols),
        indptr=indptr,
        indices=col_index.astype(column_index_dtype(cols)),
        values=np.ascontiguousarray(matrix[row_index, col_index], dtype=np.float32),
    )


# ---- kernels -------------------------------------------------------------------------------
# Loop bounds are cast to uint64 so that every index stays unsigned (see the module docstring).


@numba.njit(fastmath=True, cache=True, nogil=True)
def csr_matvec(indptr, indices, values, x, out):  # pragma: no cover - compiled
    """out (rows,) = A @ x (cols,), one thread."""
    for row in range(out.shape[0]):
        acc = np.float32(0.0)
        for k in range(np.uint64(indptr[row]), np.uint64(indptr[row + 1])):
            acc += values[k] * x[indices[k]]
        out[row] = acc


@numba.njit(fastmath=True, cache=True, nogil=True, parallel=True)
def csr_matvec_parallel(indptr, indices, values, x, out):  # pragma: no cover - compiled
    """out (rows,) = A @ x (cols,), rows split over numba's threads."""
    for row in numba.prange(out.shape[0]):
        acc = np.float32(0.0)
        for k in range(np.uint64(indptr[row]), np.uint64(indptr[row + 1])):
            acc += values[k] * x[indices[k]]
        out[row] = acc


# Inlined into both batch kernels below, which differ only in how they walk the rows.
@numba.njit(fastmath=True, cache=True, nogil=True, inline="always")
def _csr_matmat_row(indptr, indices, values, x, out, row):  # pragma: no cover - compiled
    """out[row, :] = A[row, :] @ x (cols, batch)."""
    batch = np.uint64(out.shape[1])
    for b in range(batch):
        out[row, b] = np.float32(0.0)
    for k in range(np.uint64(indptr[row]), np.uint64(indptr[row + 1])):
        value = values[k]
        column = indices[k]
        for b in range(batch):
            out[row, b] += value * x[column, b]


@numba.njit(fastmath=True, cache=True, nogil=True)
def csr_matmat(indptr, indices, values, x, out):  # pragma: no cover - compiled
    """out (rows, batch) = A @ x (cols, batch), one thread."""
    for row in range(out.shape[0]):
        _csr_matmat_row(indptr, indices, values, x, out, row)


@numba.njit(fastmath=True, cache=True, nogil=True, parallel=True)
def csr_matmat_parallel(indptr, indices, values, x, out):  # pragma: no cover - compiled
    """out (rows, batch) = A @ x (cols, batch), rows split over numba's threads."""
    for row in numba.prange(out.shape[0]):
        _csr_matmat_row(indptr, indices, values, x, out, row)


# Up to this many columns, A @ x runs as one CSR vector product per column: the vector kernel's
# gathers are vectorized, the batch kernel's are not (at hidden 1024, 90% sparse, one thread:
# 4 columns took 170 us one by one against 390 us in csr_matmat; at 16 columns csr_matmat wins).
CSR_COLUMNWISE_MAX_BATCH = 8


@numba.njit(fastmath=True, nogil=True)
def matmat_by_columns(matvec, indptr, indices, values, x, out):  # pragma: no cover - compiled
    """out (rows, batch) = A @ x (cols, batch) as `batch` calls of `matvec` (small batches)."""
    columns = np.ascontiguousarray(x.T)
    results = np.empty((out.shape[1], out.shape[0]), dtype=np.float32)
    for b in range(columns.shape[0]):
        matvec(indptr, indices, values, columns[b], results[b])
    out[:] = results.T


CSR_KERNELS = SparseKernels(csr_matvec, csr_matvec_parallel, csr_matmat, csr_matmat_parallel,
                            CSR_COLUMNWISE_MAX_BATCH)


def set_cpu_threads(threads: int) -> int:
    """Use `threads` CPU threads in torch and in the numba kernels (0: leave torch's default,
    and give numba as many). Returns the number now in use; 2 or more means run in parallel."""
    if threads > 0:
        torch.set_num_threads(threads)
    in_use = torch.get_num_threads()
    numba.set_num_threads(max(1, min(in_use, numba.config.NUMBA_NUM_THREADS)))
    return in_use


def sparse_multiply(matrix, x: np.ndarray, out: np.ndarray | None = None,
                    parallel: bool = False) -> np.ndarray:
    """A @ x for x (cols,) -> (rows,) or x (cols, batch) -> (rows, batch); float32, C order.

    `matrix` is a CsrMatrix or a block_kernels.BlockSparseMatrix (anything with `shape` and
    `kernels`); `parallel` splits rows over numba's threads (numba.set_num_threads: how many)."""
    rows, cols = matrix.shape
    if x.shape[0] != cols or x.ndim not in (1, 2):
        raise ValueError(f"matrix {matrix.shape} cannot multiply x of shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if out is None:
        out = np.empty((rows,) + x.shape[1:], dtype=np.float32)
    kernels = matrix.kernels
    matvec = kernels.matvec_parallel if parallel else kernels.matvec
    arrays = (matrix.indptr, matrix.indices, matrix.values)
    if x.ndim == 1:
        matvec(*arrays, x, out)
    elif x.shape[1] <= kernels.columnwise_max_batch:
        matmat_by_columns(matvec, *arrays, x, out)
    else:
        (kernels.matmat_parallel if parallel else kernels.matmat)(*arrays, x, out)
    return out
