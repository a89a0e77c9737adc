/* int8 sparse and dense matrix products for CPU inference, one implementation per instruction
 * set ("level") behind the same signatures.
 *
 * Levels (SP_LEVEL_*): portable C (any compiler, any CPU: the reference every other level is
 * tested against), AVX2 (+FMA; vpmaddubsw for the int8 products), AVX-512 (F, BW, VL, VBMI and
 * VNNI: vpermi2b lookups and vpdpbusd products). native_module.c picks one at run time.
 *
 * Every product is exact integer arithmetic: out[r] = sum_k W[r, k] * x[k] with W and x int8 in
 * [-127, 127] and int32 results, so every level gives bit-identical int32 outputs. The float
 * parts (quantizing activations, scaling the products back, the recurrent cells) are written
 * once (int8_layer.h) and compiled per level without FP contraction, so they agree too.
 *
 * Matrix layouts (built in numpy by speechprune/deploy/int8.py; every layout pads the matrix
 * with zeros to padded_rows x padded_cols, and x must hold padded_cols entries, zero past cols):
 *
 * SP_CSR (portable): row r owns values ptr[r] .. ptr[r + 1] - 1 at columns `columns`.
 *
 * SP_QUADS (every level): the matrix cut into quads of group_rows (4, 8 or 16) rows x 4
 *   columns; quad row g owns quads ptr[g] .. ptr[g + 1] - 1, `columns[q]` is quad q's first
 *   column / 4 and its group_rows * 4 values are stored row by row (value (r, k) at r * 4 + k).
 *   Only quads holding a non-zero are stored: a matrix pruned in 4x4 (or larger) blocks keeps
 *   whole blocks, and a dense matrix is every quad (the "dense int8" path).
 *
 * SP_ELL (AVX-512: 16 rows x 128 columns per cell): unstructured sparsity laid out for
 *   in-register lookups. Cell (g, p) of rows g * group_rows.. and columns p * panel_cols.. owns
 *   steps ptr[g * panels + p] .. ptr[g * panels + p + 1] - 1; step s holds for each row (lane) r
 *   of the group its next four non-zeros of the cell: byte r * 4 + k of the step's `offsets` is
 *   the column within the panel, of `values` the weight (0 where the row has run out). A step
 *   is one table lookup (vpermi2b) and one 4-way multiply-add per lane: no gathers from memory.
 *
 * SP_WINDOWS (AVX2: group_rows 8, panel_cols 32): the same steps, but each over its own window
 *   of 32 columns instead of a fixed panel. Row group g (rows g * 8 ..) owns steps ptr[g] ..
 *   ptr[g + 1] - 1; step s looks at columns columns[s] .. columns[s] + 31 (the leftmost column
 *   a row of the group has not stored yet, at most padded_cols - 32) and holds up to four of
 *   each row's next non-zeros there, bytes r * 4 + k of `offsets` and `values` as in SP_ELL.
 *   The window follows the non-zeros, so steps fill better than fixed panels' (1.6 stored
 *   lanes per non-zero at 90% sparsity, against 2.35 for 8 x 32 cells), and a group is one
 *   loop over its steps. Offsets are encoded for two 16-byte tables (two vpshufb): c < 16 as c,
 *   else (c - 16) | 0x80.
 *
 * `row_sums` (padded_rows) holds each row's sum of values: AVX-512's vpdpbusd multiplies
 * unsigned by signed bytes, so that level adds 128 to x and subtracts 128 * row_sums after.
 * `scales` (padded_rows) is each row's weight scale: W_float[r, k] = scales[r] * W[r, k].
 */
#ifndef SPEECHPRUNE_INT8_KERNELS_H
#define SPEECHPRUNE_INT8_KERNELS_H

#include <stdint.h>

enum sp_level { SP_LEVEL_PORTABLE = 0, SP_LEVEL_AVX2 = 1, SP_LEVEL_AVX512 = 2, SP_LEVELS = 3 };

enum sp_layout { SP_CSR = 0, SP_QUADS = 1, SP_ELL = 2, SP_WINDOWS = 3 };

/* The recurrent cells, with torch's gate order; the same numbers as sparse_rnn.CELLS. */
enum sp_cell { SP_RNN_TANH = 0, SP_RNN_RELU = 1, SP_GRU = 2, SP_LSTM = 3 };

/* Return codes of the int8 entry points. */
enum sp_status { SP_OK = 0, SP_BAD_LEVEL = 1, SP_BAD_LAYOUT = 2, SP_NO_MEMORY = 3,
                 SP_BAD_SHAPE = 4 };

typedef struct sp_int8_matrix {
    int64_t rows, cols;               /* the matrix's own shape */
    int64_t padded_rows, padded_cols; /* the kernel's output and input lengths */
    int64_t groups, panels;           /* ELL: cells are groups x panels; QUADS, WINDOWS: groups =
                                       * quad rows, row groups */
    int32_t layout;                   /* enum sp_layout */
    int32_t group_rows;               /* ELL, WINDOWS: rows per cell; QUADS: rows per quad */
    int32_t panel_cols;               /* ELL: columns per cell; WINDOWS: per window */
    int32_t unused;
    const uint32_t *ptr;              /* row / quad-row / cell pointers, see above */
    const uint16_t *columns;          /* CSR: column of each value; QUADS: column / 4 of each quad;
                                       * WINDOWS: first column of each step's window */
    const uint8_t *offsets;           /* ELL, WINDOWS: column offset of each step lane */
    const int8_t *values;
    const int32_t *row_sums;
    const float *scales;
} sp_int8_matrix;

/* The products take x as sp_prepare_input_<level> left it: quantized int8, then rewritten in
 * place into the form the level's instructions want (AVX-512: x + 128 as uint8). */

/* out (padded_rows) = W x for x (padded_cols) int8, prepared. */
typedef void (*sp_matvec_fn)(const sp_int8_matrix *m, const int8_t *x, int32_t *out);
/* The same for n vectors: x + j * x_stride -> out + j * out_stride, j = 0 .. n - 1. */
typedef void (*sp_matmat_fn)(const sp_int8_matrix *m, int64_t n, const int8_t *x,
                             int64_t x_stride, int32_t *out, int64_t out_stride);

/* Per level: the products, and the layer functions int8_layer.h builds on them. */
#define SP_DECLARE_LEVEL(L)                                                                      \
    int sp_supports_layout_##L(const sp_int8_matrix *m);                                         \
    void sp_prepare_input_##L(int8_t *x, int64_t n);                                             \
    void sp_matvec_##L(const sp_int8_matrix *m, const int8_t *x, int32_t *out);                  \
    void sp_matmat_##L(const sp_int8_matrix *m, int64_t n, const int8_t *x, int64_t x_stride,    \
                       int32_t *out, int64_t out_stride);                                        \
    int sp_linear_##L(const sp_int8_matrix *m, int64_t n, const float *x, int64_t x_stride,      \
                      const float *bias, float *y, int64_t y_stride);                            \
    int sp_run_direction_##L(const sp_int8_matrix *w_hh, int32_t cell, const float *bias_hh,     \
                             const float *projected, int64_t projected_stride, int64_t steps,    \
                             int32_t reverse, float *out, int64_t out_stride);

SP_DECLARE_LEVEL(portable)
SP_DECLARE_LEVEL(avx2)
SP_DECLARE_LEVEL(avx512)

#endif
