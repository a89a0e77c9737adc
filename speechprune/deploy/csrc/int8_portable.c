/* The portable level: plain C that any compiler builds for any CPU (aarch64 included). It is
 * the reference the SIMD levels are tested against, and what runs where they cannot. Layouts:
 * SP_CSR for unstructured sparsity, SP_QUADS for blocks and dense matrices (int8_kernels.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "int8_kernels.h"

#define SP_LEVEL portable

int sp_supports_layout_portable(const sp_int8_matrix *m) {
    if (m->layout == SP_CSR) return m->padded_rows >= m->rows && m->padded_cols >= m->cols;
    return m->layout == SP_QUADS &&
           (m->group_rows == 4 || m->group_rows == 8 || m->group_rows == 16);
}

/* The products take int8 x as it is. */
void sp_prepare_input_portable(int8_t *x, int64_t n) { (void)x; (void)n; }

static void csr_matvec(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    for (int64_t r = 0; r < m->rows; r++) {
        int32_t acc = 0;
        for (uint32_t k = m->ptr[r]; k < m->ptr[r + 1]; k++)
            acc += (int32_t)m->values[k] * (int32_t)x[m->columns[k]];
        out[r] = acc;
    }
    for (int64_t r = m->rows; r < m->padded_rows; r++) out[r] = 0;
}

static void quads_matvec(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    const int64_t rows = m->group_rows;
    for (int64_t g = 0; g < m->groups; g++) {
        int32_t acc[16] = {0};
        for (uint32_t quad = m->ptr[g]; quad < m->ptr[g + 1]; quad++) {
            const int8_t *w = m->values + (int64_t)quad * rows * 4;
            const int8_t *xq = x + 4 * (int64_t)m->columns[quad];
            for (int64_t r = 0; r < rows; r++)
                for (int64_t k = 0; k < 4; k++)
                    acc[r] += (int32_t)w[r * 4 + k] * (int32_t)xq[k];
        }
        for (int64_t r = 0; r < rows; r++) out[g * rows + r] = acc[r];
    }
}

void sp_matvec_portable(const sp_int8_matrix *m, const int8_t *x, int32_t *out) {
    if (m->layout == SP_CSR)
        csr_matvec(m, x, out);
    else
        quads_matvec(m, x, out);
}

void sp_matmat_portable(const sp_int8_matrix *m, int64_t n, const int8_t *x, int64_t x_stride,
                        int32_t *out, int64_t out_stride) {
    for (int64_t j = 0; j < n; j++) sp_matvec_portable(m, x + j * x_stride, out + j * out_stride);
}

#include "int8_layer.h"
