/* gemm_nt.h: c += a b^T for row-major a (m, k) and b (n, k), both read along k.
 *
 *   c(i, j) += sum over kk of a(i, kk) b(j, kk)
 *
 * This is the shape of a dense layer's forward pass, y (B, out) += x (B, in) W^T with W
 * (out, in): OpenBLAS must first copy W^T into panels on every call (and x too), which costs
 * it 10-15% at the MLP's shapes (batch 64-128, in 784, out 256). Here each output is a dot
 * product of two contiguous rows, 16 lanes at a time, so nothing is copied: a tile of 4 rows
 * of a and 6 of b keeps 24 sums in registers, and reads 10 vectors for 24 FMAs. Measured on the
 * benchmark machine (Zen 4), hot caches: 105-107 GFLOP/s at (64, 256, 784) and (128, 256, 784)
 * against OpenBLAS's 88-97; 100-104 against 92-100 for the wide MLP's (256, 1024, 784|1024).
 *
 * On that path each c(i, j) is one fixed sum (16 lane chains along k, then a fixed tree),
 * whatever m, n or the tile: a row's result does not depend on the other rows in the batch.
 * Without AVX-512, or for k < 128 (where the kernel loses), the call goes to cblas_sgemm. */
#ifndef MN_GEMM_NT_H
#define MN_GEMM_NT_H

#include <stdbool.h>
#include <stddef.h>

void mn_gemm_nt(int m, int n, int k, const float *a, size_t lda, const float *b, size_t ldb,
                float *c, size_t ldc);
/* Whether a call with this k runs the kernel above (else OpenBLAS). */
bool mn_gemm_nt_own(int k);

#endif
