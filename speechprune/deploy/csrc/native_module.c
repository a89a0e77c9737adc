/* speechprune.deploy._native: the C kernels, compiled when the package installs.
 *
 * Python calls the functions below through ctypes (speechprune/deploy/native.py); the module
 * object exists so the library is a regular extension module that setuptools builds and
 * `import` finds. Each int8 entry point takes the level to run (enum sp_level) and refuses one
 * the CPU lacks with SP_BAD_LEVEL, so a forced level can never execute an illegal instruction. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "int8_kernels.h"

/* CPU features the levels need, as bits of sp_cpu_features(); native.py names them. */
enum sp_feature { SP_AVX2 = 1 << 0, SP_FMA = 1 << 1, SP_AVX512F = 1 << 2, SP_AVX512BW = 1 << 3,
                  SP_AVX512VL = 1 << 4, SP_AVX512VBMI = 1 << 5, SP_AVX512VNNI = 1 << 6 };

#define SP_AVX2_FEATURES (SP_AVX2 | SP_FMA)
#define SP_AVX512_FEATURES (SP_AVX2_FEATURES | SP_AVX512F | SP_AVX512BW | SP_AVX512VL | \
                            SP_AVX512VBMI | SP_AVX512VNNI)

/* The features this CPU and its OS support (the compiler's runtime checks XGETBV too). */
int32_t sp_cpu_features(void) {
    int32_t features = 0;
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) features |= SP_AVX2;
    if (__builtin_cpu_supports("fma")) features |= SP_FMA;
    if (__builtin_cpu_supports("avx512f")) features |= SP_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) features |= SP_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) features |= SP_AVX512VL;
    if (__builtin_cpu_supports("avx512vbmi")) features |= SP_AVX512VBMI;
    if (__builtin_cpu_supports("avx512vnni")) features |= SP_AVX512VNNI;
#endif
    return features;
}

/* Bit (1 << level) for each level that can run here. */
int32_t sp_cpu_levels(void) {
    static int32_t levels = -1;
    if (levels < 0) {
        const int32_t features = sp_cpu_features();
        int32_t found = 1 << SP_LEVEL_PORTABLE;
        if ((features & SP_AVX2_FEATURES) == SP_AVX2_FEATURES) found |= 1 << SP_LEVEL_AVX2;
        if ((features & SP_AVX512_FEATURES) == SP_AVX512_FEATURES) found |= 1 << SP_LEVEL_AVX512;
        levels = found;
    }
    return levels;
}

static int runnable(int32_t level) {
    return level >= 0 && level < SP_LEVELS && (sp_cpu_levels() & (1 << level));
}

#if defined(__x86_64__) || defined(_M_X64)
#define SP_DISPATCH(level, call, ...)                                                          \
    switch (level) {                                                                           \
    case SP_LEVEL_PORTABLE: return call##_portable(__VA_ARGS__);                               \
    case SP_LEVEL_AVX2: return call##_avx2(__VA_ARGS__);                                       \
    case SP_LEVEL_AVX512: return call##_avx512(__VA_ARGS__);                                   \
    default: return SP_BAD_LEVEL;                                                              \
    }
#else
#define SP_DISPATCH(level, call, ...)                                                          \
    switch (level) {                                                                           \
    case SP_LEVEL_PORTABLE: return call##_portable(__VA_ARGS__);                               \
    default: return SP_BAD_LEVEL;                                                              \
    }
#endif

/* 1 when `level` can run matrix m's layout, else 0. */
int32_t sp_supports_layout(int32_t level, const sp_int8_matrix *m) {
    if (!runnable(level)) return 0;
    SP_DISPATCH(level, sp_supports_layout, m)
}

int32_t sp_linear(int32_t level, const sp_int8_matrix *m, int64_t n, const float *x,
                  int64_t x_stride, const float *bias, float *y, int64_t y_stride) {
    if (!runnable(level)) return SP_BAD_LEVEL;
    SP_DISPATCH(level, sp_linear, m, n, x, x_stride, bias, y, y_stride)
}

int32_t sp_run_direction(int32_t level, const sp_int8_matrix *w_hh, int32_t cell,
                         const float *bias_hh, const float *projected, int64_t projected_stride,
                         int64_t steps, int32_t reverse, float *out, int64_t out_stride) {
    if (!runnable(level)) return SP_BAD_LEVEL;
    SP_DISPATCH(level, sp_run_direction, w_hh, cell, bias_hh, projected, projected_stride, steps,
                reverse, out, out_stride)
}

#if defined(__x86_64__) || defined(_M_X64)
#define SP_CALL(level, call, ...)                                                              \
    switch (level) {                                                                           \
    case SP_LEVEL_PORTABLE: call##_portable(__VA_ARGS__); break;                               \
    case SP_LEVEL_AVX2: call##_avx2(__VA_ARGS__); break;                                       \
    case SP_LEVEL_AVX512: call##_avx512(__VA_ARGS__); break;                                   \
    }
#else
#define SP_CALL(level, call, ...) call##_portable(__VA_ARGS__);
#endif

/* The raw integer products, for tests and benchmarks: x (n, x_stride) plain int8, which is
 * prepared in place for the level; out (n, out_stride) int32, padded_rows each. n == 1 runs
 * the one-vector kernel, larger n the batch one. */
int32_t sp_matmat_int32(int32_t level, const sp_int8_matrix *m, int64_t n, int8_t *x,
                        int64_t x_stride, int32_t *out, int64_t out_stride) {
    if (!sp_supports_layout(level, m)) return runnable(level) ? SP_BAD_LAYOUT : SP_BAD_LEVEL;
    for (int64_t j = 0; j < n; j++) SP_CALL(level, sp_prepare_input, x + j * x_stride, m->padded_cols)
    if (n == 1) {
        SP_CALL(level, sp_matvec, m, x, out)
    } else {
        SP_CALL(level, sp_matmat, m, n, x, x_stride, out, out_stride)
    }
    return SP_OK;
}

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native",
    "speechprune's C kernels; called through ctypes by speechprune.deploy.native.", -1, NULL,
    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&native_module); }
