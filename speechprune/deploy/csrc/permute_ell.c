/* Unstructured sparse matrix-vector product with AVX-512 in-register lookups ("permute-ELL").
 *
 * The matrix is cut into groups of 16 rows and panels of 32 columns. Within a (group, panel)
 * cell, "slot" s holds for each of the 16 rows its s-th non-zero: a column offset 0..31 (uint8)
 * and its value (0 where a row has fewer non-zeros than the cell's busiest row). A slot is one
 * 16-lane step: the panel's 32 x values sit in two registers, vpermi2ps picks each lane's x by
 * its offset, and one FMA accumulates 16 rows at once. No per-weight gathers from memory, which
 * bind the CSR kernel (kernels.py).
 *
 * Layout (built by permute_ell.py): slot_ptr[g * panels + p] .. slot_ptr[g * panels + p + 1]
 * are the slots of cell (g, p); offsets and values hold 16 entries per slot. x_padded has
 * 32 * panels entries (zeros past the matrix's columns), out_padded 16 per group.
 *
 * permute_ell_matmat4 multiplies four vectors at once: each slot's offsets and values are read
 * once and used for all four, so a batch streams the matrix a quarter as often as four matvecs
 * (the matrix's stream, not the arithmetic, bounds the one-vector kernel at batch 16).
 */
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

__attribute__((target("avx512f")))
void permute_ell_matvec(int64_t first_group, int64_t last_group, int64_t panels,
                        const uint32_t *slot_ptr, const uint8_t *offsets, const float *values,
                        const float *x_padded, float *out_padded) {
    for (int64_t g = first_group; g < last_group; g++) {
        /* Two accumulators: consecutive slots do not wait for each other's FMA. */
        __m512 acc0 = _mm512_setzero_ps();
        __m512 acc1 = _mm512_setzero_ps();
        const uint32_t *cells = slot_ptr + g * panels;
        for (int64_t p = 0; p < panels; p++) {
            size_t s = cells[p];
            const size_t end = cells[p + 1];
            if (s == end) continue;
            const __m512 x_low = _mm512_loadu_ps(x_padded + 32 * p);
            const __m512 x_high = _mm512_loadu_ps(x_padded + 32 * p + 16);
            for (; s + 1 < end; s += 2) {
                __m512i i0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(offsets + 16 * s)));
                __m512i i1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(offsets + 16 * s + 16)));
                acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(values + 16 * s),
                                       _mm512_permutex2var_ps(x_low, i0, x_high), acc0);
                acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(values + 16 * s + 16),
                                       _mm512_permutex2var_ps(x_low, i1, x_high), acc1);
            }
            if (s < end) {
                __m512i i0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(offsets + 16 * s)));
                acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(values + 16 * s),
                                       _mm512_permutex2var_ps(x_low, i0, x_high), acc0);
            }
        }
        _mm512_storeu_ps(out_padded + 16 * g, _mm512_add_ps(acc0, acc1));
    }
}

/* Four columns: x_padded + c * x_stride and out_padded + c * out_stride (c = 0..3) are laid out
 * as in permute_ell_matvec. One accumulator per column; a slot's four permutes and FMAs are
 * independent of each other, which hides the FMA latency the matvec needs two accumulators for. */
__attribute__((target("avx512f")))
void permute_ell_matmat4(int64_t first_group, int64_t last_group, int64_t panels,
                         const uint32_t *slot_ptr, const uint8_t *offsets, const float *values,
                         const float *x_padded, int64_t x_stride,
                         float *out_padded, int64_t out_stride) {
    const float *x0 = x_padded, *x1 = x_padded + x_stride;
    const float *x2 = x_padded + 2 * x_stride, *x3 = x_padded + 3 * x_stride;
    for (int64_t g = first_group; g < last_group; g++) {
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        __m512 acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps();
        const uint32_t *cells = slot_ptr + g * panels;
        for (int64_t p = 0; p < panels; p++) {
            size_t s = cells[p];
            const size_t end = cells[p + 1];
            if (s == end) continue;
            const __m512 low0 = _mm512_loadu_ps(x0 + 32 * p), high0 = _mm512_loadu_ps(x0 + 32 * p + 16);
            const __m512 low1 = _mm512_loadu_ps(x1 + 32 * p), high1 = _mm512_loadu_ps(x1 + 32 * p + 16);
            const __m512 low2 = _mm512_loadu_ps(x2 + 32 * p), high2 = _mm512_loadu_ps(x2 + 32 * p + 16);
            const __m512 low3 = _mm512_loadu_ps(x3 + 32 * p), high3 = _mm512_loadu_ps(x3 + 32 * p + 16);
            for (; s < end; s++) {
                const __m512i index = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(offsets + 16 * s)));
                const __m512 value = _mm512_loadu_ps(values + 16 * s);
                acc0 = _mm512_fmadd_ps(value, _mm512_permutex2var_ps(low0, index, high0), acc0);
                acc1 = _mm512_fmadd_ps(value, _mm512_permutex2var_ps(low1, index, high1), acc1);
                acc2 = _mm512_fmadd_ps(value, _mm512_permutex2var_ps(low2, index, high2), acc2);
                acc3 = _mm512_fmadd_ps(value, _mm512_permutex2var_ps(low3, index, high3), acc3);
            }
        }
        _mm512_storeu_ps(out_padded + 16 * g, acc0);
        _mm512_storeu_ps(out_padded + out_stride + 16 * g, acc1);
        _mm512_storeu_ps(out_padded + 2 * out_stride + 16 * g, acc2);
        _mm512_storeu_ps(out_padded + 3 * out_stride + 16 * g, acc3);
    }
}
#endif
