/* The tiled SP_QUADS product of the SIMD levels: TILE vectors at a time, one per lane.
 *
 * Included by int8_avx2.c (TILE 8) and int8_avx512.c (TILE 16) inside their target pragma,
 * after each defines TILE and, for its vector width, transpose_tile (TILE vectors into `tile`,
 * tile[(c * TILE + v) * 4 + k] = x_v[4 c + k]) and quads_tile (every quad row of the matrix
 * over one transposed tile). What differs between the levels is those two; the walk over the
 * vectors below is the same. The including file has already included <stdlib.h>.
 */

/* Vectors x .. x + (TILE - 1) * x_stride. The group's row count is passed as a constant, so
 * each call of quads_tile unrolls its loops over rows into registers. */
static void quads_matmat_tile(const sp_int8_matrix *m, const int8_t *x, int64_t x_stride,
                              int32_t *out, int64_t out_stride, int8_t *tile) {
    transpose_tile(x, x_stride, m->padded_cols / 4, tile);
    if (m->group_rows == 16)
        quads_tile(m, 16, tile, out, out_stride);
    else if (m->group_rows == 8)
        quads_tile(m, 8, tile, out, out_stride);
    else
        quads_tile(m, 4, tile, out, out_stride);
}

/* The first n - n % TILE of the n vectors, a tile at a time, when m is SP_QUADS; returns how
 * many vectors it did: 0 for another layout, fewer than TILE vectors, or no memory for the
 * tile (the caller's narrower loops then do them all, with the same results). */
static int64_t quads_matmat_tiles(const sp_int8_matrix *m, int64_t n, const int8_t *x,
                                  int64_t x_stride, int32_t *out, int64_t out_stride) {
    if (m->layout != SP_QUADS || n < TILE) return 0;
    int8_t *tile = malloc((size_t)m->padded_cols * TILE);
    if (!tile) return 0;
    int64_t j = 0;
    for (; j + TILE <= n; j += TILE)
        quads_matmat_tile(m, x + j * x_stride, x_stride, out + j * out_stride, out_stride, tile);
    free(tile);
    return j;
}
