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
        for (size_t quad = m->ptr[g]; quad < m->ptr[g + 1]; quad++) {
            const __m128i w = _mm_loadu_si128((const __m128i *)(m->values + 16 * quad));
            const int64_t column = 4 * (int64_t)m->columns[quad];
            for (int c = 0; c < columns; c++)
                acc[c] = _mm_dpbusd_epi32(
                    acc[c], _mm_set1_epi32(offset_quad(x + c * x_stride + column)), w);
        }
        const __m128i offset = _mm_slli_epi32(
            _mm_loadu_si128((const __m128i *)(m->row_sums + 4 * g)), 7);
        for (int c = 0; c < columns; c++)
            _mm_storeu_si128((__m128i *)(out + c * out_stride + 4 * g), _mm_sub_epi32(acc[c], offset));
    }
}

/* x's 4 bytes at quads `columns[0..3]`, each in all four int32 lanes of its 128-bit lane. */
static inline __m512i four_quads(const int8_t *x, const uint16_t *columns, __m512i spread) {
    const __m128i quads = _mm_setr_epi32(offset_quad(x + 4 * columns[0]), offset_quad(x + 4 * columns[1]),
                                         offset_quad(x + 4 * columns[2]), offset_quad(x + 4 * columns[3]));
    return _mm512_permutexvar_epi32(spread, _mm512_castsi128_si512(quads));
}

/* One vector, 4-row quads (4x4 blocks): four consecutive quads' 64 bytes fill a register, so a
 * vpdpbusd does 64 multiply-adds instead of 16; each 128-bit lane sums one quad, and the four
 * lanes are added at the end of the quad row. */
static void quads4_matvec(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    const __m512i spread = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    for (int64_t g = 0; g < m->groups; g++) {
        __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
        size_t quad = m->ptr[g];
        const size_t end = m->ptr[g + 1];
        for (; quad + 7 < end; quad += 8) {
            acc0 = _mm512_dpbusd_epi32(acc0, four_quads(x, m->columns + quad, spread),
                                       _mm512_loadu_si512(m->values + 16 * quad));
            acc1 = _mm512_dpbusd_epi32(acc1, four_quads(x, m->columns + quad + 4, spread),
                                       _mm512_loadu_si512(m->values + 16 * quad + 64));
        }
        if (quad + 3 < end) {
            acc0 = _mm512_dpbusd_epi32(acc0, four_quads(x, m->columns + quad, spread),
                                       _mm512_loadu_si512(m->values + 16 * quad));
            quad += 4;
        }
        const __m512i sum = _mm512_add_epi32(acc0, acc1);
        __m128i acc = _mm_add_epi32(
            _mm_add_epi32(_mm512_castsi512_si128(sum), _mm512_extracti32x4_epi32(sum, 1)),
            _mm_add_epi32(_mm512_extracti32x4_epi32(sum, 2), _mm512_extracti32x4_epi32(sum, 3)));
        for (; quad < end; quad++)
            acc = _mm_dpbusd_epi32(acc, _mm_set1_epi32(offset_quad(x + 4 * m->columns[quad])),
                                   _mm_loadu_si128((const __m128i *)(m->values + 16 * quad)));
        const __m128i offset = _mm_slli_epi32(
            _mm_loadu_si128((const __m128i *)(m->row_sums + 4 * g)), 7);
        _mm_storeu_si128((__m128i *)(out + 4 * g), _mm_sub_epi32(acc, offset));
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
        quads4_matvec(m, x, out);
}

/* ---- SP_QUADS, 16 vectors at a time: the vectors in the lanes ---------------------------
 * For many vectors (an input projection over frames) the roles turn around: a register holds
 * one quad column's 4 bytes for 16 vectors, and each of the quad's rows multiplies it by its 4
 * weights broadcast, so every vpdpbusd does 64 useful multiply-adds whatever the quad's height
 * (4-row quads get 16 per instruction the other way). The 16 vectors are first transposed into
 * `tile`: tile[(c * 16 + v) * 4 + k] = x_v[4 c + k]. */

#define TILE 16

static void transpose_tile(const int8_t *x, int64_t x_stride, int64_t quad_cols, int8_t *tile) {
    const __m512i strides = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7,
                                                                6, 5, 4, 3, 2, 1, 0),
                                               _mm512_set1_epi32((int32_t)x_stride));
    for (int64_t c = 0; c < quad_cols; c++)
        _mm512_storeu_si512(tile + 64 * c, _mm512_i32gather_epi32(strides, x + 4 * c, 1));
}

/* Rows r0 .. r0 + 3 of 16 vectors (a[i]: row r0 + i, lane v: vector v) into out + v * out_stride
 * + r0: four 4 x 4 transposes, one per 128-bit lane. */
static inline void store_rows4(__m512i a0, __m512i a1, __m512i a2, __m512i a3, int32_t *out,
                               int64_t out_stride) {
    const __m512i t0 = _mm512_unpacklo_epi32(a0, a1), t1 = _mm512_unpackhi_epi32(a0, a1);
    const __m512i t2 = _mm512_unpacklo_epi32(a2, a3), t3 = _mm512_unpackhi_epi32(a2, a3);
    const __m512i v0 = _mm512_unpacklo_epi64(t0, t2), v1 = _mm512_unpackhi_epi64(t0, t2);
    const __m512i v2 = _mm512_unpacklo_epi64(t1, t3), v3 = _mm512_unpackhi_epi64(t1, t3);
#define STORE_LANE(j)                                                                          \
    _mm_storeu_si128((__m128i *)(out + (4 * (j) + 0) * out_stride), _mm512_extracti32x4_epi32(v0, j)); \
    _mm_storeu_si128((__m128i *)(out + (4 * (j) + 1) * out_stride), _mm512_extracti32x4_epi32(v1, j)); \
    _mm_storeu_si128((__m128i *)(out + (4 * (j) + 2) * out_stride), _mm512_extracti32x4_epi32(v2, j)); \
    _mm_storeu_si128((__m128i *)(out + (4 * (j) + 3) * out_stride), _mm512_extracti32x4_epi32(v3, j));
    STORE_LANE(0)
    STORE_LANE(1)
    STORE_LANE(2)
    STORE_LANE(3)
#undef STORE_LANE
}

static inline void quads_tile(const sp_int8_matrix *m, const int rows, const int8_t *tile,
                              int32_t *out, int64_t out_stride) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m512i acc[16];
        for (int r = 0; r < rows; r++) acc[r] = _mm512_setzero_si512();
        for (size_t quad = m->ptr[g]; quad < m->ptr[g + 1]; quad++) {
            const __m512i xv = _mm512_loadu_si512(tile + 64 * (size_t)m->columns[quad]);
            const int8_t *w = m->values + (size_t)rows * 4 * quad;
            for (int r = 0; r < rows; r++)
                acc[r] = _mm512_dpbusd_epi32(acc[r], xv, _mm512_set1_epi32(offset_quad(w + 4 * r)));
        }
        const int32_t *sums = m->row_sums + rows * g;
        for (int r = 0; r < rows; r++)
            acc[r] = _mm512_sub_epi32(acc[r], _mm512_set1_epi32(sums[r] * 128));
        for (int r = 0; r < rows; r += 4)
            store_rows4(acc[r], acc[r + 1], acc[r + 2], acc[r + 3], out + rows * g + r, out_stride);
    }
}

#include "int8_tiles.h"

void sp_matmat_avx512(const sp_int8_matrix *m, int64_t n, const int8_t *x, int64_t x_stride,
                      int32_t *out, int64_t out_stride) {
    int64_t j = quads_matmat_tiles(m, n, x, x_stride, out, out_stride);
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
