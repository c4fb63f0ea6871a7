/* test_gemm.c: c += a b^T and c += a b (src/gemm.h) are right on every shape the kernels cut
 * differently (partial tiles, a k tail, blocks of a's rows, both views of a, strides),
 * against a sum in double; they write nothing outside c's (m, n); and on a kernel's path a
 * row's and a column's bits do not depend on the rows and columns computed with them. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "check.h"
#include "gemm.h"
#include "rng.h"

static float *randoms(size_t n, uint64_t stream) {
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = mn_rng_normal(21, stream, i);
  return v;
}

/* The worst error of c = [c0 +] a b against a sum in double, relative to the bound
 * k eps sum |a b|, for the views a(i, l) = a[i * a_row + l * a_k], b(l, j) = b[l * b_k + j *
 * b_col]; and how many values of c's rows past column n (the gap up to ldc) changed. */
typedef struct {
  size_t a_row, a_k, b_k, b_col;
} views;

static double against_double(int m, int n, int k, const float *a, const float *b, views v,
                             const float *c0, bool add, const float *c, size_t ldc, int *outside) {
  double worst = 0.0;
  *outside = 0;
  for (int i = 0; i < m; i++) {
    for (int j = 0; j < n; j++) {
      double s = add ? c0[(size_t)i * ldc + j] : 0.0, mag = fabs(s);
      for (int l = 0; l < k; l++) {
        const double p = (double)a[(size_t)i * v.a_row + (size_t)l * v.a_k] *
                         b[(size_t)l * v.b_k + (size_t)j * v.b_col];
        s += p, mag += fabs(p);
      }
      const double err = fabs(c[(size_t)i * ldc + j] - s) / (mag * (k + 1) * 6e-8 + 1e-30);
      if (err > worst) worst = err;
    }
    for (size_t j = (size_t)n; j < ldc; j++)
      *outside += c[(size_t)i * ldc + j] != c0[(size_t)i * ldc + j];
  }
  return worst;
}

/* c += a b^T: a (m, k) in rows of lda >= k, b (n, k) in rows of ldb, c (m, n) in rows of ldc;
 * the gaps hold values the GEMM must neither read into a sum nor overwrite. */
static void check_nt(int m, int n, int k) {
  const size_t lda = (size_t)k + 3, ldb = (size_t)k + 5, ldc = (size_t)n + 2;
  float *a = randoms((size_t)m * lda, 1), *b = randoms((size_t)n * ldb, 2);
  float *c0 = randoms((size_t)m * ldc, 3), *c = malloc((size_t)m * ldc * sizeof(float));
  memcpy(c, c0, (size_t)m * ldc * sizeof(float));
  mn_gemm_nt(m, n, k, a, lda, b, ldb, c, ldc, false);
  int outside;
  const double worst =
      against_double(m, n, k, a, b, (views){lda, 1, 1, ldb}, c0, true, c, ldc, &outside);
  CHECK(worst <= 1.0, "nt m %d n %d k %d: error %.3g of the bound", m, n, k, worst);
  CHECK(outside == 0, "nt m %d n %d k %d: %d values written outside c", m, n, k, outside);
  free(a), free(b), free(c0), free(c);
}

/* With relu, mn_gemm_nt leaves the bits of the plain product put through the network's ReLU
 * (mn_activation_forward): negatives 0, a NaN still NaN, the gaps of c untouched. c0 has
 * NaNs in a few places, and -0 where the product is empty (k = 0). */
static void check_nt_relu(int m, int n, int k) {
  const size_t lda = (size_t)k + 3, ldb = (size_t)k + 5, ldc = (size_t)n + 2, nc = (size_t)m * ldc;
  float *a = randoms((size_t)m * lda + 1, 11), *b = randoms((size_t)n * ldb + 1, 12);
  float *c0 = randoms(nc, 13), *c[2] = {malloc(nc * sizeof(float)), malloc(nc * sizeof(float))};
  for (size_t i = 0; i < nc; i += 7) c0[i] = i % 2 ? NAN : -0.0f;
  for (int fused = 0; fused < 2; fused++) {
    memcpy(c[fused], c0, nc * sizeof(float));
    mn_gemm_nt(m, n, k, a, lda, b, ldb, c[fused], ldc, fused);
    if (!fused)
      for (int i = 0; i < m; i++)
        mn_activation_forward(MN_ACT_RELU, 0.0f, c[0] + (size_t)i * ldc, 1, (size_t)n);
  }
  size_t differ = 0, nans = 0, zeros = 0;
  for (size_t i = 0; i < nc; i++) {
    differ += memcmp(&c[0][i], &c[1][i], sizeof(float)) != 0;
    nans += isnan(c[1][i]), zeros += c[1][i] == 0.0f;
  }
  CHECK(differ == 0, "nt relu m %d n %d k %d: %zu of %zu values differ from the unfused ReLU", m, n,
        k, differ, nc);
  CHECK(nans > 0 && zeros > nc / 4, "nt relu m %d n %d k %d: %zu NaN, %zu zeros", m, n, k, nans,
        zeros);
  free(a), free(b), free(c0), free(c[0]), free(c[1]);
}

/* c [+]= a b with b (k, n) in rows of ldb and a as the dense layer views it: a_k == 1 is a
 * row-major (m, k) (dx = dy W), else a (k, m) read down its columns (dW = dy^T x). Without
 * add, c's old values (random here) must not show in the result. */
static void check_nn(int m, int n, int k, bool transposed, bool add) {
  const size_t ldb = (size_t)n + 3, ldc = (size_t)n + 2;
  const size_t a_row = transposed ? 1 : (size_t)k + 5, a_k = transposed ? (size_t)m + 5 : 1;
  const size_t na = transposed ? (size_t)k * a_k : (size_t)m * a_row;
  float *a = randoms(na, 6), *b = randoms((size_t)k * ldb, 7);
  float *c0 = randoms((size_t)m * ldc, 8), *c = malloc((size_t)m * ldc * sizeof(float));
  memcpy(c, c0, (size_t)m * ldc * sizeof(float));
  const bool said = mn_gemm_nn(m, n, k, a, a_row, a_k, b, ldb, c, ldc, add);
  /* finite operands: the kernel says so, cblas_sgemm's path does not know, nor does k = 0
   * when it adds nothing to c's old values */
  const bool expect = n == 0 || (k == 0 ? !add : mn_gemm_nn_own(m, n, k));
  CHECK(said == expect, "nn m %d n %d k %d add %d: finite said %d, expected %d", m, n, k, add, said,
        expect);
  int outside;
  const double worst =
      against_double(m, n, k, a, b, (views){a_row, a_k, ldb, 1}, c0, add, c, ldc, &outside);
  CHECK(worst <= 1.0, "nn m %d n %d k %d transposed %d add %d: error %.3g of the bound", m, n, k,
        transposed, add, worst);
  CHECK(outside == 0, "nn m %d n %d k %d: %d values written outside c", m, n, k, outside);
  free(a), free(b), free(c0), free(c);
}

/* mn_gemm_nn's kernel must not call finite a product with a NaN or an infinity anywhere in
 * what it stores: one in a (first, middle or last value it reads) or in b (its last column:
 * the masked lanes of a tile's edge), or in c's old value when adding; and must call it
 * finite when the only NaNs lie where it never reads (the gaps of a's and b's rows). */
static void check_nn_nonfinite(int m, int n, int k, bool transposed, bool add) {
  const size_t ldb = (size_t)n + 3, ldc = (size_t)n + 2;
  const size_t a_row = transposed ? 1 : (size_t)k + 5, a_k = transposed ? (size_t)m + 5 : 1;
  const size_t na = transposed ? (size_t)k * a_k : (size_t)m * a_row, nb = (size_t)k * ldb;
  const size_t last_a = (size_t)(m - 1) * a_row + (size_t)(k - 1) * a_k;
  const size_t mid_a = (size_t)(m / 2) * a_row + (size_t)(k / 2) * a_k;
  const size_t a_gap = transposed ? (size_t)m : (size_t)k; /* first value past row 0 */
  const float inf = INFINITY;
  struct {
    int where; /* 0: a, 1: b, 2: c */
    size_t at;
    float value;
    bool finite; /* what the kernel must say */
  } cases[] = {
      {0, 0, NAN, false},
      {0, mid_a, inf, false},
      {0, last_a, -inf, false},
      {1, (size_t)(k - 1) * ldb + (size_t)(n - 1), NAN, false},
      {1, (size_t)n, NAN, true}, /* b's row gap */
      {0, a_gap, NAN, true},     /* a's row gap */
      {2, (size_t)(m - 1) * ldc + (size_t)(n - 1), inf, !add},
  };
  for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
    float *v[3] = {randoms(na, 6), randoms(nb, 7), randoms((size_t)m * ldc, 8)};
    v[cases[t].where][cases[t].at] = cases[t].value;
    const bool said = mn_gemm_nn(m, n, k, v[0], a_row, a_k, v[1], ldb, v[2], ldc, add);
    CHECK(said == cases[t].finite,
          "nn m %d n %d k %d transposed %d add %d case %zu: finite said %d", m, n, k, transposed,
          add, t, said);
    free(v[0]), free(v[1]), free(v[2]);
  }
}

/* Rows [r0, r0 + rows) by columns [c0, c0 + cols) of c (m, n) from the same a and b: for nt
 * a (m, k) and b (n, k), else a (k, m) seen transposed (dW's view) and b (k, n). */
static void product_block(bool nt, int m, int n, int k, const float *a, const float *b, int r0,
                          int rows, int c0, int cols, float *c) {
  float *cb = c + (size_t)r0 * n + c0;
  if (nt)
    mn_gemm_nt(rows, cols, k, a + (size_t)r0 * k, (size_t)k, b + (size_t)c0 * k, (size_t)k, cb,
               (size_t)n, false);
  else
    mn_gemm_nn(rows, cols, k, a + r0, 1, (size_t)m, b + c0, (size_t)n, cb, (size_t)n, true);
}

/* Blocks of rb rows alone, and of cb columns alone, give the bits they have in the whole
 * product (block sizes that are never the kernel's tile). */
static void check_independent(bool nt, int m, int n, int k, int rb, int cb) {
  float *a = randoms((size_t)m * k, 4), *b = randoms((size_t)n * k, 5);
  const size_t nc = (size_t)m * n;
  float *all = calloc(nc, sizeof(float)), *rows = calloc(nc, sizeof(float)),
        *cols = calloc(nc, sizeof(float));
  product_block(nt, m, n, k, a, b, 0, m, 0, n, all);
  for (int lo = 0; lo < m; lo += rb)
    product_block(nt, m, n, k, a, b, lo, m - lo < rb ? m - lo : rb, 0, n, rows);
  for (int lo = 0; lo < n; lo += cb)
    product_block(nt, m, n, k, a, b, 0, m, lo, n - lo < cb ? n - lo : cb, cols);
  CHECK(memcmp(all, rows, nc * sizeof(float)) == 0,
        "%s m %d n %d k %d: a row's bits depend on the rows computed with it", nt ? "nt" : "nn", m,
        n, k);
  CHECK(memcmp(all, cols, nc * sizeof(float)) == 0,
        "%s m %d n %d k %d: a column's bits depend on the columns computed with it",
        nt ? "nt" : "nn", m, n, k);
  free(a), free(b), free(all), free(rows), free(cols);
}

int main(void) {
  const int ms[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 64};
  const int ns[] = {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 25};
  const int ks[] = {1, 15, 16, 17, 127, 128, 129, 143, 200, 784};
  for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
    for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
      for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) check_nt(ms[mi], ns[ni], ks[ki]);
  check_nt(150, 7, 2001); /* a's rows in blocks of 64: a block ends inside a tile's rows */
  check_nt(5, 0, 200);    /* nothing to do: every value is outside c, none may change */
  check_nt_relu(64, 256, 784); /* the kernel (k >= 128) */
  check_nt_relu(13, 25, 129);
  check_nt_relu(13, 25, 64); /* cblas_sgemm, then a pass */
  check_nt_relu(5, 7, 0);    /* only the ReLU */
  if (mn_gemm_nt_own(64, 256, 784)) {
    check_independent(true, 23, 29, 784, 3, 5); /* tiles are 4 x 6 */
    check_independent(true, 9, 14, 129, 3, 5);
    check_independent(true, 64, 256, 784, 3, 5); /* the MLP's first layer */
  } else {
    printf("test_gemm: no AVX-512 here: cblas_sgemm computes every c += a b^T, row and column "
           "independence not checked\n");
  }
  const int nm[] = {1, 2, 5, 11, 12, 13, 25, 64};
  const int nn[] = {1, 15, 16, 17, 31, 32, 33, 48, 49, 100};
  const int nk[] = {1, 31, 32, 33, 64, 128, 129, 200};
  for (size_t ki = 0; ki < sizeof nk / sizeof *nk; ki++)
    for (size_t mi = 0; mi < sizeof nm / sizeof *nm; mi++)
      for (size_t ni = 0; ni < sizeof nn / sizeof *nn; ni++)
        for (int t = 0; t < 4; t++) check_nn(nm[mi], nn[ni], nk[ki], t & 1, t & 2);
  check_nn(5, 0, 64, false, true); /* every value is outside c */
  check_nn(5, 0, 64, false, false);
  check_nn(3, 7, 0, false, false); /* an empty sum stores zeros */
  if (mn_gemm_nn_own(25, 100, 64)) {
    const int fm[] = {1, 12, 13, 25}, fn[] = {1, 16, 17, 33, 100};
    for (size_t mi = 0; mi < sizeof fm / sizeof *fm; mi++)
      for (size_t ni = 0; ni < sizeof fn / sizeof *fn; ni++)
        for (int t = 0; t < 4; t++) check_nn_nonfinite(fm[mi], fn[ni], 64, t & 1, t & 2);
  }
  if (mn_gemm_nn_own(256, 784, 64)) {
    check_independent(false, 29, 70, 64, 5, 20);   /* tiles are 12 x 32 */
    check_independent(false, 256, 784, 64, 5, 20); /* the MLP's first weight gradient */
  } else {
    printf("test_gemm: no AVX-512 here: cblas_sgemm computes every c += a b, row and column "
           "independence not checked\n");
  }
  /* more than one thread (train.threads): the kernels step aside for cblas_sgemm, which uses
   * them, from 2^24 multiply-adds on (the MLP's first layer at batch 128), and keep the small
   * GEMMs; the results are as right either way (check_nn expects "finite" only from a kernel) */
  const bool own_nt = mn_gemm_nt_own(128, 256, 784), own_nn = mn_gemm_nn_own(256, 784, 128);
  const bool small_nt = mn_gemm_nt_own(64, 32, 784), small_nn = mn_gemm_nn_own(25, 100, 64);
  CHECK(own_nt == small_nt && own_nn == small_nn, "1 thread: the kernels' shapes");
  mn_gemm_set_threads(2);
  CHECK(!mn_gemm_nt_own(128, 256, 784) && !mn_gemm_nn_own(256, 784, 128),
        "2 threads: the large GEMMs still on the kernels");
  CHECK(mn_gemm_nt_own(64, 32, 784) == small_nt && mn_gemm_nn_own(25, 100, 64) == small_nn,
        "2 threads: the small GEMMs no longer on the kernels");
  check_nt(128, 256, 784);
  check_nt_relu(128, 256, 784);
  for (int t = 0; t < 4; t++) check_nn(256, 784, 128, t & 1, t & 2);
  mn_gemm_set_threads(1);
  CHECK(mn_gemm_nt_own(128, 256, 784) == own_nt && mn_gemm_nn_own(256, 784, 128) == own_nn,
        "back to 1 thread: not the kernels as before");
  return check_report("test_gemm");
}
