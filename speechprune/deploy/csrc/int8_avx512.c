/* The AVX-512 level: F, BW, VL, VBMI and VNNI (Intel Ice Lake / Sapphire Rapids and later, AMD
 * Zen 4 and later). Layouts: SP_ELL with 16-row x 128-column cells for unstructured sparsity,
 * SP_QUADS for blocks and dense matrices.
 *
 * vpermi2b looks each lane's x byte up in the panel's 128 bytes (two registers) and vpdpbusd
 * adds four byte products per int32 lane. vpdpbusd multiplies unsigned by signed bytes, so x is
 * offset by 128 once per vector (sp_prepare_input_avx512) and 128 * row_sums[r] is taken off at
 * the end: sum (x + 128) w = sum x w + 128 sum w, exactly.
 * On a CPU that is not x86-64 this file compiles to nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,avx2,fma")
#endif

#define SP_LEVEL avx512
#define ELL_ROWS 16
#define ELL_COLUMNS 128

int sp_supports_layout_avx512(const sp_int8_matrix *m) {
    if (m->layout == SP_ELL) return m->group_rows == ELL_ROWS && m->panel_cols == ELL_COLUMNS;
    return m->layout == SP_QUADS &&
           (m->group_rows == 4 || m->group_rows == 8 || m->group_rows == 16);
}

/* x ^ 0x80 turns int8 x into x + 128 as uint8, vpdpbusd's unsigned operand. */
void sp_prepare_input_avx512(int8_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (int8_t)((uint8_t)x[i] ^ 0x80u);
}

/* x's 4 prepared bytes at `x`, in every int32 lane. */
static inline int32_t offset_quad(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, sizeof v);
    return v;
}

/* sum - 128 * row_sums for 16 rows. */
static inline __m512i remove_offset(__m512i sum, const int32_t *row_sums) {
    return _mm512_sub_epi32(sum, _mm512_slli_epi32(_mm512_loadu_si512(row_sums), 7));
}

/* ---- SP_ELL ---------------------------------------------------------------------------- */

static inline __m512i ell_step(__m512i acc, __m512i low, __m512i high, const sp_int8_matrix *m,
                               size_t step) {
    const __m512i offsets = _mm512_loadu_si512(m->offsets + 64 * step);
    const __m512i weights = _mm512_loadu_si512(m->values + 64 * step);
    return _mm512_dpbusd_epi32(acc, _mm512_permutex2var_epi8(low, offsets, high), weights);
}

static void ell_matvec(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    const int64_t panels = m->panels;
    for (int64_t g = 0; g < m->groups; g++) {
        /* Four chains of vpdpbusd: a cell holds a few steps, and each depends on the last. */
        __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
        __m512i acc2 = _mm512_setzero_si512(), acc3 = _mm512_setzero_si512();
        const uint32_t *cells = m->ptr + g * panels;
        for (int64_t p = 0; p < panels; p++) {
            size_t s = cells[p];
            const size_t end = cells[p + 1];
            if (s == end) continue;
            const __m512i low = _mm512_loadu_si512(x + ELL_COLUMNS * p);
            const __m512i high = _mm512_loadu_si512(x + ELL_COLUMNS * p + 64);
            for (; s + 3 < end; s += 4) {
                acc0 = ell_step(acc0, low, high, m, s);
                acc1 = ell_step(acc1, low, high, m, s + 1);
                acc2 = ell_step(acc2, low, high, m, s + 2);
                acc3 = ell_step(acc3, low, high, m, s + 3);
            }
            if (s < end) acc0 = ell_step(acc0, low, high, m, s++);
            if (s < end) acc1 = ell_step(acc1, low, high, m, s++);
            if (s < end) acc2 = ell_step(acc2, low, high, m, s);
        }
        const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(acc0, acc1), _mm512_add_epi32(acc2, acc3));
        _mm512_storeu_si512(out + ELL_ROWS * g, remove_offset(sum, m->row_sums + ELL_ROWS * g));
    }
}

/* Four vectors: each step's offsets and weights are read once for all four. */
static void ell_matmat4(const sp_int8_matrix *m, const int8_t *x, int64_t x_stride, int32_t *out,
                        int64_t out_stride) {
    const int64_t panels = m->panels;
    for (int64_t g = 0; g < m->groups; g++) {
        __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512(), _mm512_setzero_si512()};
        const uint32_t *cells = m->ptr + g * panels;
        for (int64_t p = 0; p < panels; p++) {
            size_t s = cells[p];
            const size_t end = cells[p + 1];
            if (s == end) continue;
            __m512i low[4], high[4];
            for (int c = 0; c < 4; c++) {
                const int8_t *panel = x + c * x_stride + ELL_COLUMNS * p;
                low[c] = _mm512_loadu_si512(panel);
                high[c] = _mm512_loadu_si512(panel + 64);
            }
            for (; s < end; s++) {
                const __m512i offsets = _mm512_loadu_si512(m->offsets + 64 * s);
                const __m512i weights = _mm512_loadu_si512(m->values + 64 * s);
                for (int c = 0; c < 4; c++)
                    acc[c] = _mm512_dpbusd_epi32(
                        acc[c], _mm512_permutex2var_epi8(low[c], offsets, high[c]), weights);
            }
        }
        for (int c = 0; c < 4; c++)
            _mm512_storeu_si512(out + c * out_stride + ELL_ROWS * g,
                                remove_offset(acc[c], m->row_sums + ELL_ROWS * g));
    }
}

/* ---- SP_QUADS -------------------------------------------------------------------------- */

static void quads16_matvec(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
        __m512i acc2 = _mm512_setzero_si512(), acc3 = _mm512_setzero_si512();
        size_t quad = m->ptr[g];
        const size_t end = m->ptr[g + 1];
#define QUAD16(acc, q) acc = _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(offset_quad(x + 4 * m->columns[q])), \
                                                 _mm512_loadu_si512(m->values + 64 * (q)))
        for (; quad + 3 < end; quad += 4) {
            QUAD16(acc0, quad);
            QUAD16(acc1, quad + 1);
            QUAD16(acc2, quad + 2);
            QUAD16(acc3, quad + 3);
        }
        for (; quad < end; quad++) QUAD16(acc0, quad);
#undef QUAD16
        const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(acc0, acc1), _mm512_add_epi32(acc2, acc3));
        _mm512_storeu_si512(out + 16 * g, remove_offset(sum, m->row_sums + 16 * g));
    }
}

static void quads16_matmat4(const sp_int8_matrix *m, const int8_t *x, int64_t x_stride,
                            int32_t *out, int64_t out_stride) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(),
                          _mm512_setzero_si512(), _mm512_setzero_si512()};
        for (size_t quad = m->ptr[g]; quad < m->ptr[g + 1]; quad++) {
            const __m512i w = _mm512_loadu_si512(m->values + 64 * quad);
            const int64_t column = 4 * (int64_t)m->columns[quad];
            for (int c = 0; c < 4; c++)
                acc[c] = _mm512_dpbusd_epi32(
                    acc[c], _mm512_set1_epi32(offset_quad(x + c * x_stride + column)), w);
        }
        for (int c = 0; c < 4; c++)
            _mm512_storeu_si512(out + c * out_stride + 16 * g,
                                remove_offset(acc[c], m->row_sums + 16 * g));
    }
}

/* 8 and 4 rows per quad: the same with 256- and 128-bit registers; `columns` 1 or 4. */
static inline void quads8_columns(const sp_int8_matrix *m, int columns, const int8_t *x,
                                  int64_t x_stride, int32_t *out, int64_t out_stride) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256(), _mm256_setzero_si256()};
        size_t quad = m->ptr[g];
        const size_t end = m->ptr[g + 1];
        if (columns == 1) {
            for (; quad + 3 < end; quad += 4)
                for (int u = 0; u < 4; u++)
                    acc[u] = _mm256_dpbusd_epi32(
                        acc[u], _mm256_set1_epi32(offset_quad(x + 4 * m->columns[quad + u])),
                        _mm256_loadu_si256((const __m256i *)(m->values + 32 * (quad + u))));
        }
        for (; quad < end; quad++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(m->values + 32 * quad));
            const int64_t column = 4 * (int64_t)m->columns[quad];
            for (int c = 0; c < columns; c++)
                acc[c] = _mm256_dpbusd_epi32(
                    acc[c], _mm256_set1_epi32(offset_quad(x + c * x_stride + column)), w);
        }
        if (columns == 1)
            acc[0] = _mm256_add_epi32(_mm256_add_epi32(acc[0], acc[1]), _mm256_add_epi32(acc[2], acc[3]));
        const __m256i offset = _mm256_slli_epi32(
            _mm256_loadu_si256((const __m256i *)(m->row_sums + 8 * g)), 7);
        for (int c = 0; c < columns; c++)
            _mm256_storeu_si256((__m256i *)(out + c * out_stride + 8 * g),
                                _mm256_sub_epi32(acc[c], offset));
    }
}

static inline void quads4_columns(const sp_int8_matrix *m, int columns, const int8_t *x,
                                  int64_t x_stride, int32_t *out, int64_t out_stride) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m128i acc[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(),
                          _mm_setzero_si128()};
        size_t quad = m->ptr[g];
        const size_t end = m->ptr[g + 1];
        if (columns == 1) {
            for (; quad + 3 < end; quad += 4)
                for (int u = 0; u < 4; u++)
                    acc[u] = _mm_dpbusd_epi32(
                        acc[u], _mm_set1_epi32(offset_quad(x + 4 * m->columns[quad + u])),
                        _mm_loadu_si128((const __m128i *)(m->values + 16 * (quad + u))));
        }
        for (; quad < end; quad++) {
            const __m128i w = _mm_loadu_si128((const __m128i *)(m->values + 16 * quad));
            const int64_t column = 4 * (int64_t)m->columns[quad];
            for (int c = 0; c < columns; c++)
                acc[c] = _mm_dpbusd_epi32(
                    acc[c], _mm_set1_epi32(offset_quad(x + c * x_stride + column)), w);
        }
        if (columns == 1)
            acc[0] = _mm_add_epi32(_mm_add_epi32(acc[0], acc[1]), _mm_add_epi32(acc[2], acc[3]));
        const __m128i offset = _mm_slli_epi32(
            _mm_loadu_si128((const __m128i *)(m->row_sums + 4 * g)), 7);
        for (int c = 0; c < columns; c++)
            _mm_storeu_si128((__m128i *)(out + c * out_stride + 4 * g), _mm_sub_epi32(acc[c], offset));
    }
}

void sp_matvec_avx512(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    if (m->layout == SP_ELL)
        ell_matvec(m, x, out);
    else if (m->group_rows == 16)
        quads16_matvec(m, x, out);
    else if (m->group_rows == 8)
        quads8_columns(m, 1, x, 0, out, 0);
    else
        quads4_columns(m, 1, x, 0, out, 0);
}

void sp_matmat_avx512(const sp_int8_matrix *m, int64_t n, const int8_t *x, int64_t x_stride,
                      int32_t *out, int64_t out_stride) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const int8_t *xj = x + j * x_stride;
        int32_t *outj = out + j * out_stride;
        if (m->layout == SP_ELL)
            ell_matmat4(m, xj, x_stride, outj, out_stride);
        else if (m->group_rows == 16)
            quads16_matmat4(m, xj, x_stride, outj, out_stride);
        else if (m->group_rows == 8)
            quads8_columns(m, 4, xj, x_stride, outj, out_stride);
        else
            quads4_columns(m, 4, xj, x_stride, outj, out_stride);
    }
    for (; j < n; j++) sp_matvec_avx512(m, x + j * x_stride, out + j * out_stride);
}

#include "int8_layer.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#endif
