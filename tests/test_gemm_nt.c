/* test_gemm_nt.c: c += a b^T (src/gemm_nt.h) is right on every shape the kernel cuts
 * differently (partial tiles, a k tail, blocks of a's rows, strided views), against a sum in
 * double; it writes nothing outside c's (m, n); and on the kernel's path a row's and a
 * column's bits do not depend on the rows and columns computed with them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gemm_nt.h"
#include "rng.h"

static float *randoms(size_t n, uint64_t stream) {
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = mn_rng_normal(21, stream, i);
  return v;
}

/* a (m, k) in rows of lda >= k, b (n, k) in rows of ldb, c (m, n) in rows of ldc: the gaps
 * hold values the GEMM must neither read into a sum nor overwrite. */
static void check_shape(int m, int n, int k) {
  const size_t lda = (size_t)k + 3, ldb = (size_t)k + 5, ldc = (size_t)n + 2;
  float *a = randoms((size_t)m * lda, 1), *b = randoms((size_t)n * ldb, 2);
  float *c0 = randoms((size_t)m * ldc, 3), *c = malloc((size_t)m * ldc * sizeof(float));
  memcpy(c, c0, (size_t)m * ldc * sizeof(float));
  mn_gemm_nt(m, n, k, a, lda, b, ldb, c, ldc);
  double worst = 0.0;
  int outside = 0;
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++) {
      double s = c0[(size_t)i * ldc + j], mag = fabs(s);
      for (int kk = 0; kk < k; kk++) {
        const double p = (double)a[(size_t)i * lda + kk] * b[(size_t)j * ldb + kk];
        s += p, mag += fabs(p);
      }
      const double err = fabs(c[(size_t)i * ldc + j] - s) / (mag * (k + 1) * 6e-8 + 1e-30);
      if (err > worst) worst = err;
    }
    for (size_t j = (size_t)n; j < ldc; j++)
      outside += c[(size_t)i * ldc + j] != c0[(size_t)i * ldc + j];
  }
  CHECK(worst <= 1.0, "m %d n %d k %d: error %.3g of the bound k eps sum |a b|", m, n, k, worst);
  CHECK(outside == 0, "m %d n %d k %d: %d values written outside c", m, n, k, outside);
  free(a), free(b), free(c0), free(c);
}

/* Each block of 3 rows of a alone, and each block of 5 rows of b alone, give the bits they
 * have in the whole product (never the kernel's 4 and 6). */
static void check_independent(int m, int n, int k) {
  float *a = randoms((size_t)m * k, 4), *b = randoms((size_t)n * k, 5);
  const size_t nc = (size_t)m * n;
  float *all = calloc(nc, sizeof(float)), *rows = calloc(nc, sizeof(float)),
        *cols = calloc(nc, sizeof(float));
  mn_gemm_nt(m, n, k, a, (size_t)k, b, (size_t)k, all, (size_t)n);
  for (int lo = 0; lo < m; lo += 3)
    mn_gemm_nt(m - lo < 3 ? m - lo : 3, n, k, a + (size_t)lo * k, (size_t)k, b, (size_t)k,
               rows + (size_t)lo * n, (size_t)n);
  for (int lo = 0; lo < n; lo += 5)
    mn_gemm_nt(m, n - lo < 5 ? n - lo : 5, k, a, (size_t)k, b + (size_t)lo * k, (size_t)k,
               cols + lo, (size_t)n);
  CHECK(memcmp(all, rows, nc * sizeof(float)) == 0,
        "m %d n %d k %d: a row's bits depend on the rows computed with it", m, n, k);
  CHECK(memcmp(all, cols, nc * sizeof(float)) == 0,
        "m %d n %d k %d: a column's bits depend on the columns computed with it", m, n, k);
  free(a), free(b), free(all), free(rows), free(cols);
}

int main(void) {
  const int ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 64};
  const int ns[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 25};
  const int ks[] = {1, 15, 16, 17, 127, 128, 129, 143, 200, 784};
  for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
    for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
      for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) check_shape(ms[mi], ns[ni], ks[ki]);
  check_shape(150, 7, 2001); /* a's rows in blocks of 64: a block ends inside a tile's rows */
  check_shape(5, 0, 200);    /* nothing to do: every value is outside c, none may change */
  if (mn_gemm_nt_own(784)) {
    check_independent(23, 29, 784);
    check_independent(9, 14, 129);
    check_independent(64, 256, 784); /* the MLP's first layer */
  } else {
    printf("test_gemm_nt: no AVX-512 here: cblas_sgemm computes every product, row and column "
           "independence not checked\n");
  }
  return check_report("test_gemm_nt");
}
