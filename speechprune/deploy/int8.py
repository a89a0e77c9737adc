"""int8 weights on the C kernels: per-row quantization, the kernels' matrix layouts (built here
in numpy, described in csrc/int8_kernels.h) and the calls into them.

A weight matrix W (rows, cols) is stored as int8 q in [-127, 127] with one float scale per row,
W ~= scales[:, None] * q (symmetric: zeros stay exact zeros, so pruned weights stay pruned). At
run time each input vector is quantized with its own scale too, the product is exact integer
arithmetic, and each output is scaled back once.

Which layout a matrix takes (`pack`):
- "dense": every 16 x 4 quad, the dense int8 product;
- "blocks": quads of the matrix's pruned blocks (blocks of 4, 8 or 16 rows and a multiple of 4
  columns: pruning=block's 4x4 and larger);
- "unstructured": the level's lookup layout (AVX-512: 16 x 128 cells; AVX2: 8-row steps over
  32-column windows that slide along each row group's non-zeros), or CSR for the portable level.
`fastest` times the candidates of a matrix once on this machine and keeps the quicker.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from speechprune import atomic_write
from speechprune.deploy import native
from speechprune.deploy.block_kernels import detect_block_shape

CSR, QUADS, ELL, WINDOWS = 0, 1, 2, 3
# Shapes (rows, columns) of the unstructured layouts' cells and windows, as the C kernels expect.
ELL_CELLS = {"avx512": (16, 128)}
WINDOW_CELLS = {"avx2": (8, 32)}
QUAD_ROWS = (16, 8, 4)  # rows per quad the kernels support, largest first
# Above this share of non-zeros a sparse layout is larger than the dense one (an index per step
# or quad on top of the values) and slower, so it is not even timed. An unpruned matrix lands
# here although int8 rounding turns its smallest weights into zeros.
DENSE_ONLY_DENSITY = 0.5
MAX_INDEX = 1 << 16  # columns (CSR) and quad columns (quads) are stored as uint16
CELLS = {"RNN_TANH": 0, "RNN_RELU": 1, "GRU": 2, "LSTM": 3}  # enum sp_cell
STATUS = {1: "the CPU cannot run this kernel level", 2: "the matrix layout does not fit the level",
          3: "out of memory", 4: "the matrix shape does not fit the cell"}


class Int8KernelError(RuntimeError):
    """A C kernel refused its arguments (a bug, or memory exhausted)."""


def quantize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q (rows, cols) int8 in [-127, 127], scales (rows,) float32): symmetric per-row
    quantization, scales = max |row| / 127 (0 for a row of zeros), rounding to nearest even."""
    matrix = np.asarray(matrix, dtype=np.float32).reshape(matrix.shape[0], -1)
    scales = (np.abs(matrix).max(axis=1, initial=0.0) / np.float32(127)).astype(np.float32)
    divisor = np.where(scales > 0, scales, np.float32(1))
    q = np.clip(np.rint(matrix / divisor[:, None]), -127, 127).astype(np.int8)
    return q, scales


def dequantize_rows(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * scales.astype(np.float32)[:, None]


class _Matrix(ctypes.Structure):
    """struct sp_int8_matrix (csrc/int8_kernels.h), field for field."""

    _fields_ = [("rows", ctypes.c_int64), ("cols", ctypes.c_int64),
                ("padded_rows", ctypes.c_int64), ("padded_cols", ctypes.c_int64),
                ("groups", ctypes.c_int64), ("panels", ctypes.c_int64),
                ("layout", ctypes.c_int32), ("group_rows", ctypes.c_int32),
                ("panel_cols", ctypes.c_int32), ("unused", ctypes.c_int32),
                ("ptr", ctypes.c_void_p), ("columns", ctypes.c_void_p),
                ("offsets", ctypes.c_void_p), ("values", ctypes.c_void_p),
                ("row_sums", ctypes.c_void_p), ("scales", ctypes.c_void_p)]


@dataclass
class PackedInt8Matrix:
    """A quantized matrix in one level's layout; holds the arrays the C struct points into."""

    shape: tuple[int, int]
    level: str
    structure: str  # "dense", "blocks" or "unstructured"
    layout: int  # CSR, QUADS or ELL
    group_rows: int
    panel_cols: int
    groups: int
    panels: int
    padded_shape: tuple[int, int]
    nnz: int
    arrays: dict[str, np.ndarray] = field(repr=False)
    struct: _Matrix = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pointers = {name: array.ctypes.data for name, array in self.arrays.items()}
        self.struct = _Matrix(self.shape[0], self.shape[1], *self.padded_shape, self.groups,
                              self.panels, self.layout, self.group_rows, self.panel_cols, 0,
                              pointers.get("ptr"), pointers.get("columns"),
                              pointers.get("offsets"), pointers.get("values"),
                              pointers.get("row_sums"), pointers.get("scales"))

    @property
    def nbytes(self) -> int:
        """Bytes a product reads: values, indices and pointers."""
        return sum(a.nbytes for name, a in self.arrays.items() if name not in ("scales", "row_sums"))

    def describe(self) -> str:
        """e.g. 'int8 unstructured (16x128 lookups)', 'int8 blocks (4-row quads)', 'int8 dense'."""
        if self.layout == ELL:
            return f"int8 unstructured ({self.group_rows}x{self.panel_cols} lookups)"
        if self.layout == WINDOWS:
            return f"int8 unstructured ({self.group_rows}-row x {self.panel_cols}-column windows)"
        if self.layout == CSR:
            return "int8 unstructured (CSR)"
        return "int8 dense" if self.structure == "dense" else f"int8 blocks ({self.group_rows}-row quads)"


def _padded(q: np.ndarray, rows: int, cols: int) -> np.ndarray:
    padded = np.zeros((rows, cols), dtype=np.int8)
    padded[:q.shape[0], :q.shape[1]] = q
    return padded


def _common_arrays(padded: np.ndarray, scales: np.ndarray) -> dict[str, np.ndarray]:
    row_scales = np.zeros(padded.shape[0], dtype=np.float32)
    row_scales[:scales.shape[0]] = scales
    return {"row_sums": padded.sum(axis=1, dtype=np.int32), "scales": row_scales}


def _pack_csr(q: np.ndarray, scales: np.ndarray, level: str) -> PackedInt8Matrix:
    rows, cols = q.shape
    if cols > MAX_INDEX:
        raise ValueError(f"the int8 kernels take at most {MAX_INDEX} columns, got {cols}")
    row_index, col_index = np.nonzero(q)
    ptr = np.zeros(rows + 1, dtype=np.uint32)
    np.cumsum(np.bincount(row_index, minlength=rows), out=ptr[1:])
    arrays = {"ptr": ptr, "columns": col_index.astype(np.uint16),
              "values": np.ascontiguousarray(q[row_index, col_index]), **_common_arrays(q, scales)}
    return PackedInt8Matrix((rows, cols), level, "unstructured", CSR, 1, 1, rows, 1, (rows, cols),
                            int(row_index.size), arrays)


def _pack_quads(q: np.ndarray, scales: np.ndarray, level: str, group_rows: int,
                structure: str) -> PackedInt8Matrix:
    rows, cols = q.shape
    groups, quad_cols = -(-rows // group_rows), -(-cols // 4)
    if quad_cols > MAX_INDEX:
        raise ValueError(f"the int8 kernels take at most {4 * MAX_INDEX} columns, got {cols}")
    padded = _padded(q, groups * group_rows, quad_cols * 4)
    quads = padded.reshape(groups, group_rows, quad_cols, 4).transpose(0, 2, 1, 3)
    keep = (np.ones((groups, quad_cols), dtype=bool) if structure == "dense"
            else quads.any(axis=(2, 3)))
    ptr = np.zeros(groups + 1, dtype=np.uint32)
    np.cumsum(keep.sum(axis=1), out=ptr[1:])
    group_index, quad_index = np.nonzero(keep)
    arrays = {"ptr": ptr, "columns": quad_index.astype(np.uint16),
              "values": np.ascontiguousarray(quads[group_index, quad_index]).reshape(-1),
              **_common_arrays(padded, scales)}
    return PackedInt8Matrix((rows, cols), level, structure, QUADS, group_rows, 4, groups, 1,
                            padded.shape, int(np.count_nonzero(q)), arrays)


def _pack_ell(q: np.ndarray, scales: np.ndarray, level: str) -> PackedInt8Matrix:
    group_rows, panel_cols = ELL_CELLS[level]
    rows, cols = q.shape
    groups, panels = -(-rows // group_rows), -(-cols // panel_cols)
    padded = _padded(q, groups * group_rows, panels * panel_cols)
    cells = padded.reshape(groups, group_rows, panels, panel_cols).transpose(0, 2, 1, 3)
    nonzero = cells != 0  # (groups, panels, rows of a cell, columns of a cell)
    per_row = nonzero.sum(axis=3)
    steps = -(-per_row.max(axis=2) // 4)  # four non-zeros of every row per step
    ptr = np.zeros(groups * panels + 1, dtype=np.uint32)
    np.cumsum(steps.ravel(), out=ptr[1:])
    # np.nonzero walks (group, panel, row, column) in order, so a non-zero's rank among its
    # row's non-zeros in the cell is its position minus where that (cell, row) run starts.
    g, p, r, c = np.nonzero(nonzero)
    run_starts = np.concatenate([[0], np.cumsum(per_row.ravel())[:-1]])
    rank = np.arange(g.size) - run_starts[(g * panels + p) * group_rows + r]
    step = ptr[g * panels + p].astype(np.int64) + rank // 4
    lane_byte = r * 4 + rank % 4
    total = int(ptr[-1])
    offsets = np.zeros((total, group_rows * 4), dtype=np.uint8)
    values = np.zeros((total, group_rows * 4), dtype=np.int8)
    offsets[step, lane_byte] = c
    values[step, lane_byte] = cells[g, p, r, c]
    arrays = {"ptr": ptr, "offsets": offsets.reshape(-1), "values": values.reshape(-1),
              **_common_arrays(padded, scales)}
    return PackedInt8Matrix((rows, cols), level, "unstructured", ELL, group_rows, panel_cols,
                            groups, panels, padded.shape, int(g.size), arrays)


@numba.njit(cache=True, nogil=True)
def _window_steps(row_ptr, columns, weights, group_rows, width, last_base, ptr, bases, offsets,
                  values, fill):  # pragma: no cover - compiled
    """The steps of the SP_WINDOWS layout from the rows' CSR (row_ptr, columns, weights):
    counts them into ptr when `fill` is False, writes bases, offsets and values when True.
    Each step's window starts at the leftmost column some row of the group has not stored yet
    (at most last_base, so it stays inside x) and takes up to 4 of each row's next non-zeros
    inside it; the row at that column stores at least one, so every step makes progress."""
    groups = ptr.shape[0] - 1
    cursor = np.empty(group_rows, dtype=np.int64)
    step = 0
    for g in range(groups):
        for r in range(group_rows):
            cursor[r] = row_ptr[g * group_rows + r]
        while True:
            base = last_base + width
            for r in range(group_rows):
                if cursor[r] < row_ptr[g * group_rows + r + 1]:
                    base = min(base, columns[cursor[r]])
            if base == last_base + width:
                break
            base = min(base, last_base)
            if fill:
                bases[step] = base
            for r in range(group_rows):
                end = row_ptr[g * group_rows + r + 1]
                taken = 0
                while taken < 4 and cursor[r] < end and columns[cursor[r]] < base + width:
                    if fill:
                        lane = step * group_rows * 4 + r * 4 + taken
                        c = columns[cursor[r]] - base
                        # Two 16-byte tables: offsets >= 16 go to the second, flagged by bit 7.
                        offsets[lane] = c if c < 16 else (c - 16) | 0x80
                        values[lane] = weights[cursor[r]]
                    cursor[r] += 1
                    taken += 1
            step += 1
        if not fill:
            ptr[g + 1] = step
    return step


def _pack_windows(q: np.ndarray, scales: np.ndarray, level: str) -> PackedInt8Matrix:
    group_rows, width = WINDOW_CELLS[level]
    rows, cols = q.shape
    if cols > MAX_INDEX:
        raise ValueError(f"the int8 kernels take at most {MAX_INDEX} columns, got {cols}")
    groups = -(-rows // group_rows)
    padded = _padded(q, groups * group_rows, -(-cols // width) * width)
    row_index, col_index = np.nonzero(padded)
    row_ptr = np.zeros(padded.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_index, minlength=padded.shape[0]), out=row_ptr[1:])
    weights = padded[row_index, col_index]
    col_index = col_index.astype(np.int64)
    last_base = padded.shape[1] - width
    ptr = np.zeros(groups + 1, dtype=np.uint32)
    none_u16, none_u8, none_i8 = (np.zeros(0, np.uint16), np.zeros(0, np.uint8),
                                  np.zeros(0, np.int8))
    total = _window_steps(row_ptr, col_index, weights, group_rows, width, last_base, ptr,
                          none_u16, none_u8, none_i8, False)
    bases = np.zeros(total, dtype=np.uint16)
    offsets = np.zeros(total * group_rows * 4, dtype=np.uint8)
    values = np.zeros(total * group_rows * 4, dtype=np.int8)
    _window_steps(row_ptr, col_index, weights, group_rows, width, last_base, ptr, bases,
                  offsets, values, True)
    arrays = {"ptr": ptr, "columns": bases, "offsets": offsets, "values": values,
              **_common_arrays(padded, scales)}
    return PackedInt8Matrix((rows, cols), level, "unstructured", WINDOWS, group_rows, width,
                            groups, 1, padded.shape, int(row_index.size), arrays)


def block_quad_rows(q: np.ndarray) -> int | None:
    """Rows per quad for a matrix pruned in whole blocks (a multiple of 4 columns wide, 4, 8 or
    16 rows high, or taller), None when its zeros are not in such blocks."""
    block_rows, block_cols = detect_block_shape(q != 0)
    if block_cols % 4:
        return None
    return next((rows for rows in QUAD_ROWS if block_rows % rows == 0), None)


def candidate_structures(q: np.ndarray) -> list[str]:
    """The layouts worth trying for `q`: its sparse one (blocks or unstructured) and dense;
    dense alone for a matrix with more than DENSE_ONLY_DENSITY of non-zeros."""
    if np.count_nonzero(q) > DENSE_ONLY_DENSITY * q.size:
        return ["dense"]
    return ["blocks" if block_quad_rows(q) else "unstructured", "dense"]


def pack(q: np.ndarray, scales: np.ndarray, level: str, structure: str) -> PackedInt8Matrix:
    """`q` (rows, cols) int8 with its row `scales` in `structure`'s layout for `level`."""
    q = np.ascontiguousarray(q, dtype=np.int8)
    if structure == "dense":
        return _pack_quads(q, scales, level, 16, "dense")
    if structure == "blocks":
        rows = block_quad_rows(q)
        if rows is None:
            raise ValueError("the matrix is not pruned in blocks of 4 columns")
        return _pack_quads(q, scales, level, rows, "blocks")
    if level in WINDOW_CELLS:
        return _pack_windows(q, scales, level)
    return _pack_csr(q, scales, level) if level == "portable" else _pack_ell(q, scales, level)


# ---- calls into the C kernels ------------------------------------------------------------


def _check(status: int, what: str) -> None:
    if status:
        raise Int8KernelError(f"{what}: {STATUS.get(status, f'status {status}')}")


def linear(matrix: PackedInt8Matrix, x: np.ndarray, bias: np.ndarray | None = None,
           out: np.ndarray | None = None) -> np.ndarray:
    """x (n, cols) float32, each row contiguous -> (n, rows) float32 = x W^T (+ bias); each
    row of x is quantized with its own scale."""
    compiled = native.library()
    n, cols = x.shape
    if cols != matrix.shape[1] or x.dtype != np.float32 or x.strides[1] != 4:
        raise ValueError(f"int8 linear of a {matrix.shape} matrix needs x (n, {matrix.shape[1]}) "
                         f"float32 with contiguous rows, got {x.shape} {x.dtype}")
    if out is None:
        out = np.empty((n, matrix.shape[0]), dtype=np.float32)
    bias_pointer = None if bias is None else np.ascontiguousarray(bias, np.float32).ctypes.data
    status = compiled.sp_linear(native.level_number(matrix.level), ctypes.byref(matrix.struct), n,
                                x.ctypes.data, x.strides[0] // 4, bias_pointer, out.ctypes.data,
                                out.strides[0] // 4)
    _check(status, "int8 linear")
    return out


def run_direction(w_hh: PackedInt8Matrix, mode: str, bias_hh: np.ndarray, projected: np.ndarray,
                  reverse: bool, out: np.ndarray) -> None:
    """One direction of a recurrent layer over one utterance: projected (steps, gates * hidden)
    holds W_ih x_t + b_ih, out (steps, hidden) receives h_t; rows may be strided, each row
    contiguous. Zero initial state; `reverse` runs from the last frame back."""
    steps = projected.shape[0]
    if out.shape[0] != steps or projected.strides[1] != 4 or out.strides[1] != 4:
        raise ValueError("projected and out need contiguous float32 rows, one per step")
    status = native.library().sp_run_direction(
        native.level_number(w_hh.level), ctypes.byref(w_hh.struct), CELLS[mode],
        bias_hh.ctypes.data, projected.ctypes.data, projected.strides[0] // 4, steps,
        int(reverse), out.ctypes.data, out.strides[0] // 4)
    _check(status, f"int8 {mode} direction")


def integer_product(matrix: PackedInt8Matrix, x: np.ndarray) -> np.ndarray:
    """The raw products: x (n, cols) int8 -> (n, rows) int32 = x q^T exactly (for tests and
    benchmarks)."""
    n, cols = x.shape
    padded = np.zeros((n, matrix.padded_shape[1]), dtype=np.int8)
    padded[:, :cols] = x
    out = np.empty((n, matrix.padded_shape[0]), dtype=np.int32)
    status = native.library().sp_matmat_int32(
        native.level_number(matrix.level), ctypes.byref(matrix.struct), n, padded.ctypes.data,
        padded.shape[1], out.ctypes.data, out.shape[1])
    _check(status, "int8 product")
    return out[:, :matrix.shape[0]]


# ---- choosing the faster layout ----------------------------------------------------------

TIMING_REPEATS = 5
# Part of every cached choice's key: bump it when a layout or its kernel changes, so timings of
# the old code are not trusted for the new (2: AVX2 sliding windows replaced its 8 x 32 cells;
# 3: 4-row quads take whole registers for one vector).
LAYOUT_VERSION = 3
_choices: dict[str, str] = {}


def _choices_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "speechprune" / "int8_layout_choices.json"


def _timing_key(q: np.ndarray, level: str, columns: int, threads: int) -> str:
    pattern = hashlib.sha256(np.packbits(q != 0).tobytes()).hexdigest()[:16]
    return f"v{LAYOUT_VERSION}|{platform.processor() or platform.machine()}|{level}|" \
           f"{q.shape[0]}x{q.shape[1]}|{pattern}|{columns} columns|{threads} threads"


def _seconds(matrix: PackedInt8Matrix, x: np.ndarray, out: np.ndarray) -> float:
    linear(matrix, x, out=out)  # warm the cache
    best = float("inf")
    for _ in range(TIMING_REPEATS):
        start = time.perf_counter()
        linear(matrix, x, out=out)
        best = min(best, time.perf_counter() - start)
    return best


def fastest(q: np.ndarray, scales: np.ndarray, level: str, columns: int,
            threads: int = 1) -> PackedInt8Matrix:
    """The faster of `q`'s sparse and dense layouts for products with `columns` vectors at a
    time (1: a recurrent step; more: an input projection over frames), timed once on this
    machine and remembered in ~/.cache/speechprune/int8_layout_choices.json."""
    structures = candidate_structures(q)
    if len(structures) == 1:
        return pack(q, scales, level, structures[0])
    key = _timing_key(q, level, columns, threads)
    if not _choices:
        try:
            _choices.update(json.loads(_choices_file().read_text()))
        except (OSError, ValueError):
            pass
    if _choices.get(key) in structures:
        return pack(q, scales, level, _choices[key])
    candidates = [pack(q, scales, level, structure) for structure in structures]
    x = np.random.default_rng(0).standard_normal((columns, q.shape[1])).astype(np.float32)
    out = np.empty((columns, q.shape[0]), dtype=np.float32)
    chosen = min(candidates, key=lambda matrix: _seconds(matrix, x, out))
    _choices[key] = chosen.structure
    _save_choices()
    return chosen


def _save_choices() -> None:
    try:
        atomic_write.write_text(_choices_file(), json.dumps(_choices, indent=1, sort_keys=True))
    except OSError:
        pass  # an unwritable cache only costs the timing again next time
