/* gemm.h: the two GEMMs of a dense layer on AVX-512 kernels of our own, where they beat
 * OpenBLAS at the shapes this project trains (batches of 32-256 rows), and cblas_sgemm
 * elsewhere (no AVX-512, or a shape outside the kernel's range).
 *
 * Why: cblas_sgemm copies its operands into panels on every call. With a batch of 64-128
 * rows that copying is a tenth of the work, more at batch 64 than at 128 (perf on the MLP:
 * its packing routines 3.4% of the samples at batch 128, 7.5% at 2 ranks of 64). Both
 * kernels read the operands where they lie (measured below on the benchmark machine, Zen 4,
 * hot caches, GFLOP/s ours against OpenBLAS's).
 *
 * On a kernel's path each c(i, j) is one fixed sum, whatever m, n or the tile: a row's
 * result does not depend on the other rows computed with it. */
#ifndef MN_GEMM_H
#define MN_GEMM_H

#include <stdbool.h>
#include <stddef.h>

/* How many threads a GEMM may use (the trainer's BLAS threads, train.threads; default 1).
 * The kernels here run on the calling thread alone, so with more than one the large GEMMs
 * (2^24 multiply-adds or more: the MLPs' first layers, the CNN's fc1) are cblas_sgemm's,
 * which spreads them over the threads; the small ones (the CNN's per-sample convolutions)
 * stay here, where OpenBLAS's threads cost more than they gain. */
void mn_gemm_set_threads(int threads);

/* c (m, n) += a b^T for row-major a (m, k) and b (n, k), both read along k: a dense layer's
 * forward pass, y (B, out) += x (B, in) W^T; with relu, each result goes through the ReLU
 * as it is stored (y < 0 ? 0 : y, so a NaN stays NaN: the bits of mn_activation_forward).
 * Each output is the dot product of two rows, 16 lanes at a time (16 chains along k, then a
 * fixed tree); a tile of 4 rows of a by 6 of b keeps 24 sums in registers and reads 10
 * vectors per 24 FMAs. (64, 256, 784): 110 vs 92; (256, 1024, 784): 109 vs 103. For k <
 * 128, cblas_sgemm (the reductions and c's load and store outweigh the dot products: k = 64,
 * 62 vs 88). */
void mn_gemm_nt(int m, int n, int k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc, bool relu);
bool mn_gemm_nt_own(int m, int n, int k); /* whether a call of this shape runs the kernel */

/* c (m, n) [+]= a b for a row-major b (k, n) and a strided view a(i, l) = a[i * a_row + l *
 * a_k], one of the strides 1: a dense layer's weight gradient, dW (out, in) += dy^T x (a =
 * dy with a_row = 1, a_k = out, add), and its input gradient, dx (B, in) = dy W (a_row =
 * out, a_k = 1, not add: c's old values are neither read nor kept). A tile of 12 rows by 32
 * columns: per l, two vectors of b's row and 12 broadcasts of a, 24 FMAs (one chain from 0
 * per output, in the order of l, then added to c's old value or stored). The weight gradient
 * of the MLP's first layer in 4 blocks at batch 64: 110 vs 97; (128, 128, 256) dx: 110 vs
 * 98. Only for k in [32, 128] and b (k, n) of at most 512 KB, which stays in L2 from one
 * tile to the next; else cblas_sgemm (at k = 256 its packed panels win, 91 vs 100; for the
 * CNN's fc1 weight gradient, b = x of 1.6 MB, they tie, 103 vs 105).
 * Returns true when every value it stored is known to be finite: the kernel also adds up
 * what it stores, and a NaN or an infinity anywhere makes that sum non-finite (finite values
 * whose sum overflows only make it say false). false from cblas_sgemm, which does not look:
 * a caller that must know scans c itself. */
bool mn_gemm_nn(int m, int n, int k, const float *a, size_t a_row, size_t a_k, const float *b,
                size_t ldb, float *c, size_t ldc, bool add);
bool mn_gemm_nn_own(int m, int n, int k);

#endif
