"""The "permute-ELL" format: unstructured sparsity laid out for AVX-512 in-register lookups.

Rows are taken 16 at a time (one 16-lane register of results) and columns 32 at a time (the x
values a vpermi2ps can pick from, held in two registers). Each (row group, column panel) cell
stores as many 16-lane slots as its busiest row has non-zeros there; slot s holds every row's
s-th non-zero in the cell (column offset and value), zero-padded. The C kernel
(csrc/permute_ell.c) then needs one permute and one FMA per slot and no gathers from memory.

At 90% random sparsity the busiest of 16 rows holds about twice the average, so the format
stores ~2x the non-zeros (plus one byte of offset each), yet its product measured 5.1x faster
than dense at 1024x1024 and 6.7x at a GRU's 3072x1024, one thread, where CSR gives 1.8-2.0x:
CSR's per-weight gathers cost more than the padding. A batch runs four vectors per pass
(the C kernel's matmat4), so each slot is read once for four utterances.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np

from speechprune.deploy.kernels import SparseFormat, SparseKernels
from speechprune.deploy.native import permute_ell_functions, selected_level

GROUP_ROWS = 16
PANEL_COLUMNS = 32
# Row groups per cache chunk of a batch product: 256 rows, about 250 KB of slots at 90%
# sparsity and 1024 columns, which stay in L2 while every column of the batch uses them.
CHUNK_GROUPS = 16


@dataclass(frozen=True)
class PermuteEllMatrix(SparseFormat):
    """A (rows, cols) float32 matrix in the layout above. `indptr` are the cells' slot pointers
    ((groups * panels + 1,) uint32), `indices` the column offsets within each panel (slots * 16,
    uint8), `values` the values (slots * 16, float32, zeros in padding lanes)."""

    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    nnz: int

    @property
    def padding(self) -> float:
        """Stored lanes over non-zeros (1.0 = no padding)."""
        return self.values.size / max(self.nnz, 1)

    @property
    def kernels(self) -> SparseKernels:
        return permute_ell_kernels()

    def to_dense(self) -> np.ndarray:
        rows, cols = self.shape
        groups, panels = -(-rows // GROUP_ROWS), -(-cols // PANEL_COLUMNS)
        dense = np.zeros((groups * GROUP_ROWS, panels * PANEL_COLUMNS), dtype=np.float32)
        slots_per_cell = np.diff(self.indptr.astype(np.int64))
        cell = np.repeat(np.arange(groups * panels), slots_per_cell)  # the cell of each slot
        lanes = np.arange(GROUP_ROWS)
        row = (cell // panels)[:, None] * GROUP_ROWS + lanes  # (slots, 16)
        column = (cell % panels)[:, None] * PANEL_COLUMNS + self.indices.reshape(-1, GROUP_ROWS)
        values = self.values.reshape(-1, GROUP_ROWS)
        stored = values != 0
        dense[row[stored], column[stored]] = values[stored]
        return dense[:rows, :cols]


def permute_ell_from_dense(matrix: np.ndarray) -> PermuteEllMatrix:
    rows, cols = matrix.shape
    groups, panels = -(-rows // GROUP_ROWS), -(-cols // PANEL_COLUMNS)
    padded = np.zeros((groups * GROUP_ROWS, panels * PANEL_COLUMNS), dtype=np.float32)
    padded[:rows, :cols] = matrix
    cells = padded.reshape(groups, GROUP_ROWS, panels, PANEL_COLUMNS).transpose(0, 2, 1, 3)
    nonzero = cells != 0  # (groups, panels, 16 rows, 32 columns)
    per_row = nonzero.sum(axis=3)  # non-zeros of each row in each cell
    slots = per_row.max(axis=2)  # (groups, panels)
    indptr = np.zeros(groups * panels + 1, dtype=np.uint32)
    np.cumsum(slots.ravel(), out=indptr[1:])
    # np.nonzero walks (group, panel, row, column) in order, so each non-zero's rank among its
    # row's non-zeros in the cell is its position minus where that (cell, row) run starts.
    g, p, r, c = np.nonzero(nonzero)
    run_starts = np.concatenate([[0], np.cumsum(per_row.ravel())[:-1]])
    rank = np.arange(g.size) - run_starts[(g * panels + p) * GROUP_ROWS + r]
    slot = indptr[g * panels + p].astype(np.int64) + rank
    total = int(indptr[-1])
    offsets = np.zeros((total, GROUP_ROWS), dtype=np.uint8)
    values = np.zeros((total, GROUP_ROWS), dtype=np.float32)
    offsets[slot, r] = c
    values[slot, r] = cells[g, p, r, c]
    return PermuteEllMatrix(shape=(rows, cols), indptr=indptr, indices=offsets.ravel(),
                            values=values.ravel(), nnz=int(g.size))


def available() -> bool:
    """True when the C kernel is compiled, this CPU runs it (see native.py) and
    SPEECHPRUNE_KERNEL does not hold the kernels below AVX-512 (where the CSR kernels run, as
    on a CPU without it)."""
    return permute_ell_functions() is not None and selected_level() == "avx512"


@functools.lru_cache(maxsize=None)
def permute_ell_kernels() -> SparseKernels:
    """numba wrappers around the C kernels, with the CSR kernels' signatures; numba calls the
    ctypes functions directly (no Python per call). Pads x to whole panels and the result to
    whole row groups."""
    functions = permute_ell_functions()
    if functions is None:
        raise RuntimeError("the permute-ELL kernel is not available on this machine")
    kernel, kernel4 = functions.matvec, functions.matmat4

    @numba.njit(nogil=True)
    def run(indptr, indices, values, first, last, x_padded, out_padded):  # pragma: no cover
        panels = x_padded.shape[0] // PANEL_COLUMNS
        kernel(first, last, panels, indptr.ctypes.data, indices.ctypes.data, values.ctypes.data,
               x_padded.ctypes.data, out_padded.ctypes.data)

    @numba.njit(nogil=True)
    def buffers(x, out):  # pragma: no cover - compiled
        x_padded = np.zeros(-(-x.shape[0] // PANEL_COLUMNS) * PANEL_COLUMNS, dtype=np.float32)
        x_padded[:x.shape[0]] = x
        out_padded = np.empty(-(-out.shape[0] // GROUP_ROWS) * GROUP_ROWS, dtype=np.float32)
        return x_padded, out_padded

    @numba.njit(nogil=True)
    def matvec(indptr, indices, values, x, out):  # pragma: no cover - compiled
        x_padded, out_padded = buffers(x, out)
        run(indptr, indices, values, 0, out_padded.shape[0] // GROUP_ROWS, x_padded, out_padded)
        out[:] = out_padded[:out.shape[0]]

    @numba.njit(nogil=True, parallel=True)
    def matvec_parallel(indptr, indices, values, x, out):  # pragma: no cover - compiled
        x_padded, out_padded = buffers(x, out)
        groups = out_padded.shape[0] // GROUP_ROWS
        chunks = numba.get_num_threads()
        for chunk in numba.prange(chunks):
            run(indptr, indices, values, chunk * groups // chunks,
                (chunk + 1) * groups // chunks, x_padded, out_padded)
        out[:] = out_padded[:out.shape[0]]

    @numba.njit(nogil=True)
    def batch_buffers(x, out):  # pragma: no cover - compiled
        """x (cols, batch) as padded rows (batch, panels * 32), and (batch, groups * 16) results."""
        x_rows = np.zeros((x.shape[1], -(-x.shape[0] // PANEL_COLUMNS) * PANEL_COLUMNS),
                          dtype=np.float32)
        x_rows[:, :x.shape[0]] = x.T
        out_rows = np.empty((x.shape[1], -(-out.shape[0] // GROUP_ROWS) * GROUP_ROWS),
                            dtype=np.float32)
        return x_rows, out_rows

    @numba.njit(nogil=True)
    def run_unit(indptr, indices, values, unit, first, last, x_rows, out_rows):  # pragma: no cover
        """Work unit `unit` over row groups first..last: units 0 .. batch // 4 - 1 are four
        columns each (the four-vector kernel), the rest one column each."""
        quads = x_rows.shape[0] // 4
        if unit < quads:
            b = 4 * unit
            kernel4(first, last, x_rows.shape[1] // PANEL_COLUMNS, indptr.ctypes.data,
                    indices.ctypes.data, values.ctypes.data, x_rows[b].ctypes.data,
                    x_rows.shape[1], out_rows[b].ctypes.data, out_rows.shape[1])
        else:
            b = 4 * quads + unit - quads
            run(indptr, indices, values, first, last, x_rows[b], out_rows[b])

    @numba.njit(nogil=True)
    def run_units(indptr, indices, values, first, last, x_rows, out_rows):  # pragma: no cover
        """Every column of the batch over row groups first..last."""
        batch = x_rows.shape[0]
        for unit in range(batch // 4 + batch % 4):
            run_unit(indptr, indices, values, unit, first, last, x_rows, out_rows)

    # Row groups are the outer loop, in chunks whose slots stay in the cache while every column
    # of the batch passes over them, instead of one pass over the whole matrix per four columns.
    # Measured on this machine it changed little (6144x1024 by 100 frames, 2 threads: 4.2 ms
    # against 4.3); the chunks are also the threads' work items in matmat_parallel.
    @numba.njit(nogil=True)
    def matmat(indptr, indices, values, x, out):  # pragma: no cover - compiled
        x_rows, out_rows = batch_buffers(x, out)
        groups = out_rows.shape[1] // GROUP_ROWS
        for first in range(0, groups, CHUNK_GROUPS):
            run_units(indptr, indices, values, first, min(first + CHUNK_GROUPS, groups),
                      x_rows, out_rows)
        out[:] = out_rows[:, :out.shape[0]].T

    # The chunks of row groups split over the threads (at least one chunk per thread): one
    # hand-off per product, not one per column (per-column hand-offs measured 1.3x of dense at
    # batch 16, 2 threads, hidden 1024).
    @numba.njit(nogil=True, parallel=True)
    def matmat_parallel(indptr, indices, values, x, out):  # pragma: no cover - compiled
        x_rows, out_rows = batch_buffers(x, out)
        groups = out_rows.shape[1] // GROUP_ROWS
        chunk = max(1, min(CHUNK_GROUPS, -(-groups // numba.get_num_threads())))
        for c in numba.prange(-(-groups // chunk)):
            run_units(indptr, indices, values, c * chunk, min((c + 1) * chunk, groups),
                      x_rows, out_rows)
        out[:] = out_rows[:, :out.shape[0]].T

    return SparseKernels(matvec, matvec_parallel, matmat, matmat_parallel, 1)
