"""The sparse kernels (CSR, permute-ELL and block-sparse) agree with dense products on random
sparse matrices; the format chooser falls back when the C kernel cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from speechprune.deploy.block_kernels import (BlockSparseMatrix, block_sparse_from_dense,
                                              detect_block_shape, sparse_from_dense)
from speechprune.deploy import block_kernels, native
from speechprune.deploy.kernels import (UINT16_COLUMNS, CsrMatrix, column_index_dtype,
                                        csr_from_dense, sparse_multiply)
from speechprune.deploy.permute_ell import (GROUP_ROWS, PermuteEllMatrix, available,
                                            permute_ell_from_dense)

needs_permute_ell = pytest.mark.skipif(not available(), reason="no AVX-512 or C compiler here: "
                                       f"{native.unavailable_reason()}")


def random_sparse(rows: int, cols: int, sparsity: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((rows, cols)).astype(np.float32)
    matrix[rng.random((rows, cols)) < sparsity] = 0.0
    return matrix


SHAPES = [(1, 1), (7, 5), (96, 32), (3 * 64, 64), (130, 257)]
SPARSITIES = [0.0, 0.5, 0.8, 0.9, 0.95, 1.0]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("batch", [None, 1, 4, 16])
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_csr_product_matches_dense_product(shape, sparsity, batch, parallel):
    matrix = random_sparse(*shape, sparsity, seed=hash((shape, sparsity)) % 1000)
    assert_product_matches_dense(csr_from_dense(matrix), matrix, batch, parallel, seed=1)


def assert_product_matches_dense(sparse, matrix: np.ndarray, batch: int | None, parallel: bool,
                                 seed: int) -> None:
    """sparse_multiply(sparse, x) equals matrix @ x for a random vector (batch None) or a
    random (cols, batch) x."""
    cols = matrix.shape[1]
    x = np.random.default_rng(seed).standard_normal(
        (cols,) if batch is None else (cols, batch)).astype(np.float32)
    result = sparse_multiply(sparse, x, parallel=parallel)
    np.testing.assert_allclose(result, matrix.astype(np.float64) @ x, rtol=1e-4, atol=1e-4)


def test_csr_keeps_exactly_the_nonzeros_in_the_smallest_unsigned_index_type():
    matrix = random_sparse(64, 300, 0.9, seed=2)
    csr = csr_from_dense(matrix)
    assert csr.nnz == np.count_nonzero(matrix)
    assert csr.indices.dtype == np.uint16
    np.testing.assert_array_equal(csr.to_dense(), matrix)
    assert column_index_dtype(UINT16_COLUMNS) == np.uint16
    assert column_index_dtype(UINT16_COLUMNS + 1) == np.uint32


def test_product_with_a_vector_of_the_wrong_length_is_refused():
    csr = csr_from_dense(random_sparse(8, 6, 0.5, seed=0))
    with pytest.raises(ValueError, match="cannot multiply"):
        sparse_multiply(csr, np.ones(7, dtype=np.float32))


def random_block_sparse(rows: int, cols: int, block_shape: tuple[int, int], sparsity: float,
                        seed: int) -> np.ndarray:
    """A random matrix with a random `sparsity` share of its (br, bc) blocks zeroed, as
    pruning=block leaves it."""
    rng = np.random.default_rng(seed)
    br, bc = block_shape
    kept = rng.random((rows // br, cols // bc)) >= sparsity
    mask = np.repeat(np.repeat(kept, br, axis=0), bc, axis=1)
    return (rng.standard_normal((rows, cols)) * mask).astype(np.float32)


BLOCK_SHAPES = [(2, 2), (4, 4), (8, 8), (16, 16), (4, 1), (1, 8), (8, 4)]
BLOCK_MATRICES = [(32, 32), (3 * 64, 64), (96, 160)]


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("batch", [None, 4, 16])
@pytest.mark.parametrize("sparsity", [0.0, 0.9, 1.0])
@pytest.mark.parametrize("shape", BLOCK_MATRICES)
@pytest.mark.parametrize("block_shape", BLOCK_SHAPES)
def test_block_sparse_product_matches_dense_product(block_shape, shape, sparsity, batch, parallel):
    matrix = random_block_sparse(*shape, block_shape, sparsity, seed=sum(shape) + block_shape[0])
    assert_product_matches_dense(block_sparse_from_dense(matrix, block_shape), matrix, batch,
                                 parallel, seed=3)


def test_block_format_stores_only_blocks_holding_a_nonzero_and_round_trips():
    matrix = random_block_sparse(64, 96, (4, 8), 0.9, seed=5)
    matrix[0, 0] = 0.0  # a zero inside a kept block is stored explicitly, not lost
    matrix[5, 9] = 0.5  # a lone weight keeps its whole block
    blocks = block_sparse_from_dense(matrix, (4, 8))
    nonempty = (matrix.reshape(16, 4, 12, 8) != 0).any(axis=(1, 3)).sum()
    assert blocks.blocks == nonempty and blocks.values.size == nonempty * 32
    assert blocks.nnz == np.count_nonzero(matrix)
    assert blocks.indices.dtype == np.uint16 and blocks.indptr[-1] == nonempty
    np.testing.assert_array_equal(blocks.to_dense(), matrix)


def test_block_shape_is_detected_from_the_pattern_of_zeros():
    assert detect_block_shape(random_block_sparse(128, 64, (16, 16), 0.9, seed=1)) == (16, 16)
    assert detect_block_shape(random_block_sparse(128, 64, (4, 4), 0.9, seed=1)) == (4, 4)
    assert detect_block_shape(random_block_sparse(96, 64, (8, 1), 0.9, seed=1)) == (8, 1)
    # Unstructured sparsity and dense matrices have no block structure to exploit... except
    # that a dense matrix is "one big block": the largest shape that divides it.
    assert detect_block_shape(random_sparse(128, 64, 0.9, seed=1)) == (1, 1)
    assert detect_block_shape(np.ones((96, 64), dtype=np.float32)) == (32, 32)
    assert not isinstance(sparse_from_dense(random_sparse(128, 64, 0.9, seed=1)), BlockSparseMatrix)
    chosen = sparse_from_dense(random_block_sparse(128, 64, (8, 8), 0.9, seed=1))
    assert isinstance(chosen, BlockSparseMatrix) and chosen.block_shape == (8, 8)


def test_matrix_that_blocks_do_not_tile_is_refused():
    with pytest.raises(ValueError, match="cannot be cut into 4x4 blocks"):
        block_sparse_from_dense(np.ones((6, 8), dtype=np.float32), (4, 4))


@needs_permute_ell
@pytest.mark.parametrize("parallel", [False, True])
# Batches of four columns run the four-vector kernel; 2 and 7 also leave single columns.
@pytest.mark.parametrize("batch", [None, 1, 2, 4, 7, 16])
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", SHAPES + [(33, 70), (1024, 96)])
def test_permute_ell_product_matches_dense_product(shape, sparsity, batch, parallel):
    matrix = random_sparse(*shape, sparsity, seed=hash((shape, sparsity, 7)) % 1000)
    assert_product_matches_dense(permute_ell_from_dense(matrix), matrix, batch, parallel, seed=4)


def test_permute_ell_layout_pads_each_cell_to_its_busiest_row_and_round_trips():
    matrix = random_sparse(40, 70, 0.9, seed=8)
    ell = permute_ell_from_dense(matrix)
    assert ell.nnz == np.count_nonzero(matrix)
    # one slot per non-zero of the busiest of each cell's 16 rows: 3 row groups x 3 panels
    padded = np.zeros((48, 96), dtype=np.float32)
    padded[:40, :70] = matrix
    busiest = (padded.reshape(3, 16, 3, 32) != 0).sum(axis=3).max(axis=1)  # (groups, panels)
    assert ell.values.size == busiest.sum() * GROUP_ROWS == ell.indices.size
    assert ell.indices.dtype == np.uint8 and ell.indices.max() < 32
    assert ell.padding >= 1.0
    np.testing.assert_array_equal(ell.to_dense(), matrix)


def test_unstructured_matrices_take_permute_ell_where_it_runs_else_csr(monkeypatch):
    matrix = random_sparse(64, 64, 0.9, seed=9)
    expected = PermuteEllMatrix if available() else CsrMatrix
    assert isinstance(block_kernels.sparse_from_dense(matrix), expected)
    monkeypatch.setattr(block_kernels, "permute_ell_available", lambda: False)
    assert isinstance(block_kernels.sparse_from_dense(matrix), CsrMatrix)


@needs_permute_ell
@pytest.mark.parametrize("level", ["portable", "avx2"])
def test_a_kernel_level_forced_below_avx512_runs_csr_for_fp32_too(monkeypatch, level):
    """SPEECHPRUNE_KERNEL=avx2 stands in for an AVX2-only CPU (scripts/bench_transcription.py
    --isa avx2), so the fp32 exports must leave the AVX-512 permute-ELL kernel too.
    Seen to fail: with available() not consulting the selected level, the matrix took
    permute-ELL under SPEECHPRUNE_KERNEL=avx2."""
    if level not in native.supported_levels():
        pytest.skip(f"this CPU does not run the {level} level")
    matrix = random_sparse(64, 64, 0.9, seed=9)
    monkeypatch.setenv(native.LEVEL_ENV, level)
    assert not available()
    assert isinstance(block_kernels.sparse_from_dense(matrix), CsrMatrix)
    monkeypatch.setenv(native.LEVEL_ENV, "avx512")
    assert isinstance(block_kernels.sparse_from_dense(matrix), PermuteEllMatrix)
