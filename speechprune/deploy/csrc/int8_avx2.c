/* The AVX2 level (AVX2 + FMA: Intel Haswell and later, AMD Zen and later). Layouts: SP_WINDOWS
 * (8-row steps over 32-column windows) for unstructured sparsity, SP_QUADS for blocks and dense
 * matrices.
 *
 * Products use vpmaddubsw (unsigned x signed bytes -> pairs summed into int16) and vpmaddwd
 * with ones (-> int32). To keep vpmaddubsw's pair sums from saturating, the sign of x moves
 * into the weight (vpsignb) and |x| <= 127 is the unsigned operand: a pair sums to at most
 * 2 * 127 * 127 = 32258 < 32767, so the result is exact.
 * On a CPU that is not x86-64 this file compiles to nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define SP_LEVEL avx2
#define WINDOW_ROWS 8
#define WINDOW_COLUMNS 32

int sp_supports_layout_avx2(const sp_int8_matrix *m) {
    if (m->layout == SP_WINDOWS)
        return m->group_rows == WINDOW_ROWS && m->panel_cols == WINDOW_COLUMNS &&
               m->padded_cols >= WINDOW_COLUMNS;
    return m->layout == SP_QUADS &&
           (m->group_rows == 4 || m->group_rows == 8 || m->group_rows == 16);
}

/* The products take int8 x as it is. */
void sp_prepare_input_avx2(int8_t *x, int64_t n) { (void)x; (void)n; }

/* acc (8 x int32) += for each lane the sum of its four byte products x * w. */
static inline __m256i dot4(__m256i acc, __m256i x, __m256i w) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(w, x));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

static inline __m128i dot4_128(__m128i acc, __m128i x, __m128i w) {
    const __m128i pairs = _mm_maddubs_epi16(_mm_abs_epi8(x), _mm_sign_epi8(w, x));
    return _mm_add_epi32(acc, _mm_madd_epi16(pairs, _mm_set1_epi16(1)));
}

static inline int32_t load_quad(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, sizeof v);
    return v;
}

/* ---- SP_WINDOWS: each step looks its 32 x bytes up in its window's two 16-byte halves ----- */

static inline __m256i window_lookup(const int8_t *window, __m256i offsets) {
    /* Offsets with bit 7 set select from the window's second half: vpshufb gives 0 for them in
     * the first lookup, and flipping bit 7 gives 0 for the others in the second. */
    const __m256i low = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)window));
    const __m256i high = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(window + 16)));
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    return _mm256_or_si256(_mm256_shuffle_epi8(low, offsets),
                           _mm256_shuffle_epi8(high, _mm256_xor_si256(offsets, flip)));
}

static inline __m256i window_step(__m256i acc, const sp_int8_matrix *m, const int8_t *x,
                                  size_t s) {
    const __m256i offsets = _mm256_loadu_si256((const __m256i *)(m->offsets + 32 * s));
    const __m256i weights = _mm256_loadu_si256((const __m256i *)(m->values + 32 * s));
    return dot4(acc, window_lookup(x + m->columns[s], offsets), weights);
}

static void windows_matvec(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    for (int64_t g = 0; g < m->groups; g++) {
        /* Four chains of products, so consecutive steps overlap. */
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
        __m256i acc2 = _mm256_setzero_si256(), acc3 = _mm256_setzero_si256();
        size_t s = m->ptr[g];
        const size_t end = m->ptr[g + 1];
        for (; s + 3 < end; s += 4) {
            acc0 = window_step(acc0, m, x, s);
            acc1 = window_step(acc1, m, x, s + 1);
            acc2 = window_step(acc2, m, x, s + 2);
            acc3 = window_step(acc3, m, x, s + 3);
        }
        if (s < end) acc0 = window_step(acc0, m, x, s++);
        if (s < end) acc1 = window_step(acc1, m, x, s++);
        if (s < end) acc2 = window_step(acc2, m, x, s);
        const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(acc0, acc1), _mm256_add_epi32(acc2, acc3));
        _mm256_storeu_si256((__m256i *)(out + WINDOW_ROWS * g), sum);
    }
}

/* Four vectors at once: each step's offsets and weights are read once for all four. */
static void windows_matmat4(const sp_int8_matrix *m, const int8_t *x, int64_t x_stride,
                            int32_t *out, int64_t out_stride) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (size_t s = m->ptr[g]; s < m->ptr[g + 1]; s++) {
            const __m256i offsets = _mm256_loadu_si256((const __m256i *)(m->offsets + 32 * s));
            const __m256i weights = _mm256_loadu_si256((const __m256i *)(m->values + 32 * s));
            const int8_t *window = x + m->columns[s];
            for (int c = 0; c < 4; c++)
                acc[c] = dot4(acc[c], window_lookup(window + c * x_stride, offsets), weights);
        }
        for (int c = 0; c < 4; c++)
            _mm256_storeu_si256((__m256i *)(out + c * out_stride + WINDOW_ROWS * g), acc[c]);
    }
}

/* ---- SP_QUADS: each quad is 4 columns of 4, 8 or 16 rows; x's 4 bytes are broadcast -------- */

static inline void quads8_columns(const sp_int8_matrix *m, int columns, const int8_t *x,
                                  int64_t x_stride, int32_t *out, int64_t out_stride) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256(), _mm256_setzero_si256()};
        uint32_t quad = m->ptr[g];
        const uint32_t end = m->ptr[g + 1];
        if (columns == 1) {
            for (; quad + 1 < end; quad += 2) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(m->values + 32 * (size_t)quad));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(m->values + 32 * (size_t)quad + 32));
                acc[0] = dot4(acc[0], _mm256_set1_epi32(load_quad(x + 4 * m->columns[quad])), w0);
                acc[1] = dot4(acc[1], _mm256_set1_epi32(load_quad(x + 4 * m->columns[quad + 1])), w1);
            }
        }
        for (; quad < end; quad++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(m->values + 32 * (size_t)quad));
            const int64_t column = 4 * (int64_t)m->columns[quad];
            for (int c = 0; c < columns; c++)
                acc[c] = dot4(acc[c], _mm256_set1_epi32(load_quad(x + c * x_stride + column)), w);
        }
        if (columns == 1) acc[0] = _mm256_add_epi32(acc[0], acc[1]);
        for (int c = 0; c < columns; c++)
            _mm256_storeu_si256((__m256i *)(out + c * out_stride + 8 * g), acc[c]);
    }
}

static inline void quads16_columns(const sp_int8_matrix *m, int columns, const int8_t *x,
                                   int64_t x_stride, int32_t *out, int64_t out_stride) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m256i top[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
                          _mm256_setzero_si256(), _mm256_setzero_si256()};
        __m256i bottom[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(),
                             _mm256_setzero_si256(), _mm256_setzero_si256()};
        for (uint32_t quad = m->ptr[g]; quad < m->ptr[g + 1]; quad++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(m->values + 64 * (size_t)quad));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(m->values + 64 * (size_t)quad + 32));
            const int64_t column = 4 * (int64_t)m->columns[quad];
            for (int c = 0; c < columns; c++) {
                const __m256i xv = _mm256_set1_epi32(load_quad(x + c * x_stride + column));
                top[c] = dot4(top[c], xv, w0);
                bottom[c] = dot4(bottom[c], xv, w1);
            }
        }
        for (int c = 0; c < columns; c++) {
            _mm256_storeu_si256((__m256i *)(out + c * out_stride + 16 * g), top[c]);
            _mm256_storeu_si256((__m256i *)(out + c * out_stride + 16 * g + 8), bottom[c]);
        }
    }
}

static inline void quads4_columns(const sp_int8_matrix *m, int columns, const int8_t *x,
                                  int64_t x_stride, int32_t *out, int64_t out_stride) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m128i acc[4] = {_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128(),
                          _mm_setzero_si128()};
        for (uint32_t quad = m->ptr[g]; quad < m->ptr[g + 1]; quad++) {
            const __m128i w = _mm_loadu_si128((const __m128i *)(m->values + 16 * (size_t)quad));
            const int64_t column = 4 * (int64_t)m->columns[quad];
            for (int c = 0; c < columns; c++)
                acc[c] = dot4_128(acc[c], _mm_set1_epi32(load_quad(x + c * x_stride + column)), w);
        }
        for (int c = 0; c < columns; c++)
            _mm_storeu_si128((__m128i *)(out + c * out_stride + 4 * g), acc[c]);
    }
}

/* x's 4 bytes at quads columns[0] and columns[1], each in all four int32 lanes of its half. */
static inline __m256i two_quads(const int8_t *x, const uint16_t *columns) {
    return _mm256_setr_m128i(_mm_set1_epi32(load_quad(x + 4 * columns[0])),
                             _mm_set1_epi32(load_quad(x + 4 * columns[1])));
}

/* One vector, 4-row quads (4x4 blocks): two consecutive quads' 32 bytes fill a register, so
 * each product instruction does twice the work of a 128-bit one; each half sums one quad, and
 * the halves are added at the end of the quad row. */
static void quads4_matvec(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    for (int64_t g = 0; g < m->groups; g++) {
        __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
        uint32_t quad = m->ptr[g];
        const uint32_t end = m->ptr[g + 1];
        for (; quad + 3 < end; quad += 4) {
            const int8_t *w = m->values + 16 * (size_t)quad;
            acc0 = dot4(acc0, two_quads(x, m->columns + quad), _mm256_loadu_si256((const __m256i *)w));
            acc1 = dot4(acc1, two_quads(x, m->columns + quad + 2),
                        _mm256_loadu_si256((const __m256i *)(w + 32)));
        }
        if (quad + 1 < end) {
            acc0 = dot4(acc0, two_quads(x, m->columns + quad),
                        _mm256_loadu_si256((const __m256i *)(m->values + 16 * (size_t)quad)));
            quad += 2;
        }
        const __m256i sum = _mm256_add_epi32(acc0, acc1);
        __m128i acc = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        if (quad < end)
            acc = dot4_128(acc, _mm_set1_epi32(load_quad(x + 4 * m->columns[quad])),
                           _mm_loadu_si128((const __m128i *)(m->values + 16 * (size_t)quad)));
        _mm_storeu_si128((__m128i *)(out + 4 * g), acc);
    }
}

/* `columns` (1 .. 4) vectors at once with the matrix's quads. */
static inline void quads_columns(const sp_int8_matrix *m, int columns, const int8_t *x,
                                 int64_t x_stride, int32_t *out, int64_t out_stride) {
    if (m->group_rows == 16) {
        quads16_columns(m, columns, x, x_stride, out, out_stride);
    } else if (m->group_rows == 8) {
        quads8_columns(m, columns, x, x_stride, out, out_stride);
    } else if (columns == 1) {
        quads4_matvec(m, x, out);
    } else {
        quads4_columns(m, columns, x, x_stride, out, out_stride);
    }
}

void sp_matvec_avx2(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    if (m->layout == SP_WINDOWS)
        windows_matvec(m, x, out);
    else
        quads_columns(m, 1, x, 0, out, 0);
}

/* ---- SP_QUADS, 8 vectors at a time: the vectors in the lanes (as int8_avx512.c, 8 wide) --- */

#define TILE 8

static void transpose_tile(const int8_t *x, int64_t x_stride, int64_t quad_cols, int8_t *tile) {
    const __m256i strides = _mm256_mullo_epi32(_mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0),
                                               _mm256_set1_epi32((int32_t)x_stride));
    for (int64_t c = 0; c < quad_cols; c++)
        _mm256_storeu_si256((__m256i *)(tile + 32 * c),
                            _mm256_i32gather_epi32((const int *)(x + 4 * c), strides, 1));
}

/* Rows r0 .. r0 + 3 of 8 vectors into out + v * out_stride + r0. */
static inline void store_rows4(__m256i a0, __m256i a1, __m256i a2, __m256i a3, int32_t *out,
                               int64_t out_stride) {
    const __m256i t0 = _mm256_unpacklo_epi32(a0, a1), t1 = _mm256_unpackhi_epi32(a0, a1);
    const __m256i t2 = _mm256_unpacklo_epi32(a2, a3), t3 = _mm256_unpackhi_epi32(a2, a3);
    const __m256i v0 = _mm256_unpacklo_epi64(t0, t2), v1 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i v2 = _mm256_unpacklo_epi64(t1, t3), v3 = _mm256_unpackhi_epi64(t1, t3);
#define STORE_LANE(j)                                                                          \
    _mm_storeu_si128((__m128i *)(out + (4 * (j) + 0) * out_stride), _mm256_extracti128_si256(v0, j)); \
    _mm_storeu_si128((__m128i *)(out + (4 * (j) + 1) * out_stride), _mm256_extracti128_si256(v1, j)); \
    _mm_storeu_si128((__m128i *)(out + (4 * (j) + 2) * out_stride), _mm256_extracti128_si256(v2, j)); \
    _mm_storeu_si128((__m128i *)(out + (4 * (j) + 3) * out_stride), _mm256_extracti128_si256(v3, j));
    STORE_LANE(0)
    STORE_LANE(1)
#undef STORE_LANE
}

static inline void quads_tile(const sp_int8_matrix *m, const int rows, const int8_t *tile,
                              int32_t *out, int64_t out_stride) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t g = 0; g < m->groups; g++) {
        __m256i acc[16];
        for (int r = 0; r < rows; r++) acc[r] = _mm256_setzero_si256();
        for (size_t quad = m->ptr[g]; quad < m->ptr[g + 1]; quad++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(tile + 32 * (size_t)m->columns[quad]));
            const __m256i magnitude = _mm256_abs_epi8(xv);
            const int8_t *w = m->values + (size_t)rows * 4 * quad;
            for (int r = 0; r < rows; r++) {
                const __m256i signed_w = _mm256_sign_epi8(_mm256_set1_epi32(load_quad(w + 4 * r)), xv);
                acc[r] = _mm256_add_epi32(
                    acc[r], _mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, signed_w), ones));
            }
        }
        for (int r = 0; r < rows; r += 4)
            store_rows4(acc[r], acc[r + 1], acc[r + 2], acc[r + 3], out + rows * g + r, out_stride);
    }
}

#include "int8_tiles.h"

void sp_matmat_avx2(const sp_int8_matrix *m, int64_t n, const int8_t *x, int64_t x_stride,
                    int32_t *out, int64_t out_stride) {
    int64_t j = quads_matmat_tiles(m, n, x, x_stride, out, out_stride);
    for (; j + 4 <= n; j += 4) {
        if (m->layout == SP_WINDOWS)
            windows_matmat4(m, x + j * x_stride, x_stride, out + j * out_stride, out_stride);
        else
            quads_columns(m, 4, x + j * x_stride, x_stride, out + j * out_stride, out_stride);
    }
    for (; j < n; j++) sp_matvec_avx2(m, x + j * x_stride, out + j * out_stride);
}

#include "int8_layer.h"

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#endif
