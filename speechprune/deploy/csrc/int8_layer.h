/* Quantized linear layers and recurrent time loops on top of one level's int8 products.
 *
 * Included at the end of each int8_<level>.c, after it defines SP_LEVEL and its products
 * sp_matvec_<level> / sp_matmat_<level>, and inside that file's target pragma, so the loops over
 * hidden units below vectorize with the level's instruction set. The including file has already
 * included <math.h>, <stdlib.h> and <string.h> (system headers stay outside target pragmas).
 *
 * Activations are quantized per vector (one frame's input, one step's hidden state):
 * scale = max |x| / 127, q = round(x / scale) in [-127, 127]. Weights carry one scale per row.
 * A product row is then (float)(int32 sum) * (row scale * vector scale).
 */

#define SP_JOIN2(a, b) a##_##b
#define SP_JOIN(a, b) SP_JOIN2(a, b)
#define SP_FN(name) SP_JOIN(name, SP_LEVEL)

/* Vectors quantized per call of sp_linear: a bounded buffer that stays in the cache. */
#define SP_LINEAR_CHUNK 32

/* Largest |x[i]|, compared as bit patterns: for non-negative floats the integer order is the
 * float order, and an integer max reduction vectorizes without -ffast-math. */
static inline float SP_FN(peak)(const float *x, int64_t n) {
    uint32_t peak = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, sizeof bits);
        bits &= 0x7fffffffu;
        peak = bits > peak ? bits : peak;
    }
    float result;
    memcpy(&result, &peak, sizeof result);
    return result;
}

/* q[0 .. n) = round(x / scale), q[n .. padded) = 0; returns scale (0 for an all-zero x). */
static inline float SP_FN(quantize)(const float *x, int64_t n, int8_t *q, int64_t padded) {
    const float peak = SP_FN(peak)(x, n);
    const float inverse = peak > 0.0f ? 127.0f / peak : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * inverse;
        v = v > 127.0f ? 127.0f : v;
        v = v < -127.0f ? -127.0f : v;
        /* Adding and removing 1.5 * 2^23 rounds to the nearest integer, ties to even (exact for
         * |v| < 2^22), as a plain add that vectorizes on every level. */
        v = (v + 12582912.0f) - 12582912.0f;
        q[i] = (int8_t)(int32_t)v;
    }
    memset(q + n, 0, (size_t)(padded - n));
    return peak / 127.0f;
}

/* y[r] = acc[r] * (scales[r] * x_scale) (+ bias[r]) for r < rows. */
static inline void SP_FN(dequantize)(const int32_t *acc, const float *scales, float x_scale,
                                     const float *bias, int64_t rows, float *y) {
    if (bias) {
        for (int64_t r = 0; r < rows; r++) y[r] = (float)acc[r] * (scales[r] * x_scale) + bias[r];
    } else {
        for (int64_t r = 0; r < rows; r++) y[r] = (float)acc[r] * (scales[r] * x_scale);
    }
}

/* y_j = W x_j + bias for j < n: x_j = x + j * x_stride (cols floats), y_j = y + j * y_stride
 * (rows floats); bias may be NULL. */
int SP_FN(sp_linear)(const sp_int8_matrix *m, int64_t n, const float *x, int64_t x_stride,
                     const float *bias, float *y, int64_t y_stride) {
    if (!SP_FN(sp_supports_layout)(m)) return SP_BAD_LAYOUT;
    const int64_t chunk = n < SP_LINEAR_CHUNK ? n : SP_LINEAR_CHUNK;
    int8_t *q = malloc((size_t)(chunk * m->padded_cols) + 1);
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)(chunk * m->padded_rows) + 1);
    float x_scales[SP_LINEAR_CHUNK];
    if (!q || !acc) {
        free(q);
        free(acc);
        return SP_NO_MEMORY;
    }
    for (int64_t first = 0; first < n; first += chunk) {
        const int64_t count = n - first < chunk ? n - first : chunk;
        for (int64_t j = 0; j < count; j++) {
            x_scales[j] = SP_FN(quantize)(x + (first + j) * x_stride, m->cols,
                                          q + j * m->padded_cols, m->padded_cols);
            SP_FN(sp_prepare_input)(q + j * m->padded_cols, m->padded_cols);
        }
        SP_FN(sp_matmat)(m, count, q, m->padded_cols, acc, m->padded_rows);
        for (int64_t j = 0; j < count; j++)
            SP_FN(dequantize)(acc + j * m->padded_rows, m->scales, x_scales[j], bias, m->rows,
                              y + (first + j) * y_stride);
    }
    free(q);
    free(acc);
    return SP_OK;
}

/* tanh as Eigen's float rational function (13/6), saturated outside +-7.9, within 3e-7 of the
 * exact value; plain arithmetic, so the loops over hidden units vectorize (libm's tanhf does
 * not). The same function as sparse_rnn.fast_tanh. */
static inline float SP_FN(tanh_approx)(float x) {
    const float limit = 7.90531110763549805f;
    x = x > limit ? limit : x;
    x = x < -limit ? -limit : x;
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p * x / q;
}

static inline float SP_FN(sigmoid_approx)(float x) {
    return 0.5f + 0.5f * SP_FN(tanh_approx)(0.5f * x);
}

/* One direction of a recurrent layer over `steps` frames of one utterance, zero initial state.
 * w_hh (gates * hidden, hidden) with gates 1 (RNN), 3 (GRU: r, z, n) or 4 (LSTM: i, f, g, o);
 * projected + t * projected_stride holds W_ih x_t + b_ih (gates * hidden floats); h_t is
 * written to out + t * out_stride (hidden floats). `reverse` runs from the last frame back. */
int SP_FN(sp_run_direction)(const sp_int8_matrix *w_hh, int32_t cell, const float *bias_hh,
                            const float *projected, int64_t projected_stride, int64_t steps,
                            int32_t reverse, float *out, int64_t out_stride) {
    const int64_t hidden = w_hh->cols;
    const int64_t gates = cell == SP_GRU ? 3 : cell == SP_LSTM ? 4 : 1;
    if (cell < SP_RNN_TANH || cell > SP_LSTM || w_hh->rows != gates * hidden) return SP_BAD_SHAPE;
    if (!SP_FN(sp_supports_layout)(w_hh)) return SP_BAD_LAYOUT;
    float *h = calloc((size_t)hidden + 1, sizeof(float));
    float *c = calloc((size_t)hidden + 1, sizeof(float));
    float *recurrent = calloc((size_t)w_hh->padded_rows + 1, sizeof(float));
    int8_t *q = malloc((size_t)w_hh->padded_cols + 1);
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)w_hh->padded_rows + 1);
    if (!h || !c || !recurrent || !q || !acc) {
        free(h); free(c); free(recurrent); free(q); free(acc);
        return SP_NO_MEMORY;
    }
    const int64_t H = hidden;
    for (int64_t step = 0; step < steps; step++) {
        const int64_t t = reverse ? steps - 1 - step : step;
        const float *x = projected + t * projected_stride;
        float *o = out + t * out_stride;
        if (step > 0) { /* h_0 = 0, so W_hh h_0 = 0: the first step needs no product */
            const float h_scale = SP_FN(quantize)(h, hidden, q, w_hh->padded_cols);
            SP_FN(sp_prepare_input)(q, w_hh->padded_cols);
            SP_FN(sp_matvec)(w_hh, q, acc);
            SP_FN(dequantize)(acc, w_hh->scales, h_scale, bias_hh, w_hh->rows, recurrent);
        } else {
            memcpy(recurrent, bias_hh, sizeof(float) * (size_t)w_hh->rows);
        }
        /* recurrent now holds W_hh h_{t-1} + b_hh. */
        if (cell == SP_GRU) {
            for (int64_t j = 0; j < H; j++) {
                const float r = SP_FN(sigmoid_approx)(x[j] + recurrent[j]);
                const float z = SP_FN(sigmoid_approx)(x[H + j] + recurrent[H + j]);
                const float n = SP_FN(tanh_approx)(x[2 * H + j] + r * recurrent[2 * H + j]);
                const float v = (1.0f - z) * n + z * h[j];
                h[j] = v;
                o[j] = v;
            }
        } else if (cell == SP_LSTM) {
            for (int64_t j = 0; j < H; j++) {
                const float i = SP_FN(sigmoid_approx)(x[j] + recurrent[j]);
                const float f = SP_FN(sigmoid_approx)(x[H + j] + recurrent[H + j]);
                const float g = SP_FN(tanh_approx)(x[2 * H + j] + recurrent[2 * H + j]);
                const float gate_o = SP_FN(sigmoid_approx)(x[3 * H + j] + recurrent[3 * H + j]);
                const float state = f * c[j] + i * g;
                c[j] = state;
                const float v = gate_o * SP_FN(tanh_approx)(state);
                h[j] = v;
                o[j] = v;
            }
        } else if (cell == SP_RNN_RELU) {
            for (int64_t j = 0; j < H; j++) {
                const float v0 = x[j] + recurrent[j];
                const float v = v0 > 0.0f ? v0 : 0.0f;
                h[j] = v;
                o[j] = v;
            }
        } else {
            for (int64_t j = 0; j < H; j++) {
                const float v = SP_FN(tanh_approx)(x[j] + recurrent[j]);
                h[j] = v;
                o[j] = v;
            }
        }
    }
    free(h); free(c); free(recurrent); free(q); free(acc);
    return SP_OK;
}
