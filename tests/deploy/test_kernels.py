"""The sparse CSR kernels agree with dense products on random sparse matrices."""

from __future__ import annotations

import numpy as np
import pytest

from speechprune.deploy.kernels import (UINT16_COLUMNS, column_index_dtype, csr_from_dense,
                                        csr_multiply)


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
    rng = np.random.default_rng(1)
    x_shape = (shape[1],) if batch is None else (shape[1], batch)
    x = rng.standard_normal(x_shape).astype(np.float32)
    result = csr_multiply(csr_from_dense(matrix), x, parallel=parallel)
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
        csr_multiply(csr, np.ones(7, dtype=np.float32))
