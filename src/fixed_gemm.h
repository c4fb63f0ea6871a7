/* fixed_gemm.h: a small single-precision GEMM in which every output is one fixed sum.
 *
 *   c(i, j) = [c(i, j) +] s(i, j),  s(i, j) = a(i, 0) b(0, j) + ... + a(i, k-1) b(k-1, j)
 *
 * s is a chain of fused multiply-adds from +0, in the order kk = 0, 1, ..., k-1 (or a fixed
 * tree of such chains, `parts` below), added to c (or stored) with one rounding at the end. The
 * bits of c(i, j) therefore depend on row i of a, column j of b and c(i, j) alone: not on m or n,
 * not on the blocking, not on the vector width or the CPU (the AVX2 kernel and the portable fmaf()
 * loop agree to the bit, and tests/test_fixed_gemm.c checks it). OpenBLAS promises none of this:
 * its kernels depend on the CPU, and for small m even a row's bits change with the number of rows.
 *
 * Reproducible mode (mpi/repro.c) runs its dense layers on it. For the micro-batch shapes
 * there it is about as fast as OpenBLAS (forward and dx within a few percent, the weight
 * gradient's tree of parts ~10-20% slower), because a weight matrix is packed once per step
 * instead of once per GEMM call. It has no cache blocking: for 128+ rows with a long k,
 * OpenBLAS is faster.
 *
 * Operands are strided views, so that one routine serves y = x W^T (W packed), dx = dy W and
 * dW += dy^T x without copies: a(i, kk) = a[i * a_row + kk * a_k]; b is cut into panels of
 * MN_FIXED_NR columns, b(kk, j) = b[(j / NR) * b_panel + kk * b_k + j % NR]. A row-major
 * (k, n) matrix with leading dimension ld is b_k = ld, b_panel = NR. */
#ifndef MN_FIXED_GEMM_H
#define MN_FIXED_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#define MN_FIXED_NR 16

typedef struct {
  int m, n, k;
  const float *a;
  size_t a_row, a_k;
  const float *b;
  size_t b_k, b_panel;
  float *c;
  size_t ldc; /* c(i, j) = c[i * ldc + j] */
  bool add;   /* c += s, else c = s */
  /* > 1: k is cut into `parts` runs of k / parts (a power of two that divides k), each summed
   * as a chain from +0 as above, and s is the balanced binary tree of their sums:
   * ((s0 + s1) + (s2 + s3)) + ... (reproducible mode's micro-batches, mpi/repro.h). */
  int parts;
} mn_fixed_gemm_args;

/* The arguments for those views (add = false, one part; set them after). */
static inline mn_fixed_gemm_args mn_fixed_view(int m, int n, int k, const float *a, size_t a_row,
                                               size_t a_k, const float *b, size_t b_k,
                                               size_t b_panel, float *c, size_t ldc) {
  return (mn_fixed_gemm_args){.m = m,
                              .n = n,
                              .k = k,
                              .a = a,
                              .a_row = a_row,
                              .a_k = a_k,
                              .b = b,
                              .b_k = b_k,
                              .b_panel = b_panel,
                              .c = c,
                              .ldc = ldc};
}

void mn_fixed_gemm(const mn_fixed_gemm_args *g);
/* The portable path, whatever the CPU (the test compares it with the one above). */
void mn_fixed_gemm_portable(const mn_fixed_gemm_args *g);

/* Floats that mn_fixed_pack writes for a (rows, cols) row-major w. */
size_t mn_fixed_packed_size(int rows, int cols);
/* Packs w^T, for w (rows, cols) row-major, as b operand (k = cols, n = rows) in panels:
 * b_k = MN_FIXED_NR, b_panel = MN_FIXED_NR * cols; the last panel is padded with zeros. */
void mn_fixed_pack(int rows, int cols, const float *w, float *packed);
/* Writes rows [at, at + rows) of a b operand with k = total_rows, n = cols in panels
 * (b_k = MN_FIXED_NR, b_panel = MN_FIXED_NR * total_rows, mn_fixed_packed_size(cols,
 * total_rows) floats), from a row-major (rows, cols) x: a few of the k rows at a time
 * (reproducible mode keeps each micro-batch's input this way). Columns past cols in the last
 * panel are not written; the GEMM never reads them. */
void mn_fixed_pack_rows(int rows, int cols, const float *x, int total_rows, int at, float *packed);

#endif
