/* test_fixed_gemm.c: the fixed-sum GEMM (src/fixed_gemm.h) keeps its promise. Its kernel and
 * its portable loop agree to the bit on every shape, partial panels and strided views
 * included; a row's bits do not depend on how many rows are computed with it; the packed
 * operand gives the same bits as the unpacked one; and the sums are right (against double). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixed_gemm.h"
#include "rng.h"

static float *randoms(size_t n, uint64_t stream) {
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = mn_rng_normal(11, stream, i);
  return v;
}

/* c = [c +] a b for row-major a (m, k), b (k, n), both ways, compared bit for bit and with a
 * double-precision sum. */
static void check_shape(int m, int n, int k, bool add) {
  float *a = randoms((size_t)m * k, 1), *b = randoms((size_t)k * n, 2);
  float *c0 = randoms((size_t)m * n, 3);
  float *fast = malloc((size_t)m * n * sizeof(float)),
        *slow = malloc((size_t)m * n * sizeof(float));
  memcpy(fast, c0, (size_t)m * n * sizeof(float));
  memcpy(slow, c0, (size_t)m * n * sizeof(float));
  mn_fixed_gemm_args g =
      mn_fixed_view(m, n, k, a, (size_t)k, 1, b, (size_t)n, MN_FIXED_NR, NULL, (size_t)n);
  g.add = add;
  g.c = fast;
  mn_fixed_gemm(&g);
  g.c = slow;
  mn_fixed_gemm_portable(&g);
  CHECK(memcmp(fast, slow, (size_t)m * n * sizeof(float)) == 0,
        "m %d n %d k %d add %d: kernel and portable loop differ", m, n, k, add);
  double worst = 0.0;
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = add ? c0[(size_t)i * n + j] : 0.0, mag = fabs(s);
      for (int kk = 0; kk < k; kk++) {
        s += (double)a[(size_t)i * k + kk] * b[(size_t)kk * n + j];
        mag += fabs((double)a[(size_t)i * k + kk] * b[(size_t)kk * n + j]);
      }
      const double err = fabs(fast[(size_t)i * n + j] - s) / (mag * (k + 1) * 6e-8 + 1e-30);
      if (err > worst) worst = err;
    }
  CHECK(worst <= 1.0, "m %d n %d k %d: error %.3g of the bound k eps sum |a b|", m, n, k, worst);
  free(a), free(b), free(c0), free(fast), free(slow);
}

/* Rows [lo, hi) alone give the bits they have among all m rows (the property OpenBLAS lacks). */
static void check_rows_independent(int m, int n, int k) {
  float *a = randoms((size_t)m * k, 4), *b = randoms((size_t)k * n, 5);
  float *all = calloc((size_t)m * n, sizeof(float)), *part = calloc((size_t)m * n, sizeof(float));
  mn_fixed_gemm_args g =
      mn_fixed_view(m, n, k, a, (size_t)k, 1, b, (size_t)n, MN_FIXED_NR, all, (size_t)n);
  mn_fixed_gemm(&g);
  for (int lo = 0; lo < m; lo += 5) { /* blocks of 5 rows: never the kernel's 6 */
    mn_fixed_gemm_args r = g;
    r.m = m - lo < 5 ? m - lo : 5;
    r.a = a + (size_t)lo * k;
    r.c = part + (size_t)lo * n;
    mn_fixed_gemm(&r);
  }
  CHECK(memcmp(all, part, (size_t)m * n * sizeof(float)) == 0,
        "m %d n %d k %d: a row's bits depend on the rows computed with it", m, n, k);
  free(a), free(b), free(all), free(part);
}

/* The three uses of the dense layer: y = x W^T through the packed W, dx = dy W and
 * dW += dy^T x through strided views, each against the portable loop on plain copies. */
static void check_views(int rows, int in, int out) {
  float *x = randoms((size_t)rows * in, 6), *w = randoms((size_t)out * in, 7);
  float *dy = randoms((size_t)rows * out, 8);
  float *packed = malloc(mn_fixed_packed_size(out, in) * sizeof(float));
  float *wt = malloc((size_t)in * out * sizeof(float)),
        *dyt = malloc((size_t)out * rows * sizeof(float));
  for (int o = 0; o < out; o++)
    for (int i = 0; i < in; i++) wt[(size_t)i * out + o] = w[(size_t)o * in + i];
  for (int r = 0; r < rows; r++)
    for (int o = 0; o < out; o++) dyt[(size_t)o * rows + r] = dy[(size_t)r * out + o];
  mn_fixed_pack(out, in, w, packed);
  const size_t ny = (size_t)rows * out, nw = (size_t)out * in;
  float *y1 = calloc(ny, sizeof(float)), *y2 = calloc(ny, sizeof(float));
  const mn_fixed_gemm_args fy = mn_fixed_view(rows, out, in, x, (size_t)in, 1, packed, MN_FIXED_NR,
                                              (size_t)MN_FIXED_NR * in, y1, (size_t)out);
  mn_fixed_gemm(&fy);
  const mn_fixed_gemm_args py =
      mn_fixed_view(rows, out, in, x, (size_t)in, 1, wt, (size_t)out, MN_FIXED_NR, y2, (size_t)out);
  mn_fixed_gemm_portable(&py);
  CHECK(memcmp(y1, y2, ny * sizeof(float)) == 0, "(%d, %d) x packed (%d, %d)^T", rows, in, out, in);
  float *g1 = randoms(nw, 9), *g2 = malloc(nw * sizeof(float));
  memcpy(g2, g1, nw * sizeof(float));
  mn_fixed_gemm_args fw =
      mn_fixed_view(out, in, rows, dy, 1, (size_t)out, x, (size_t)in, MN_FIXED_NR, g1, (size_t)in);
  fw.add = true;
  mn_fixed_gemm(&fw);
  mn_fixed_gemm_args pw = mn_fixed_view(out, in, rows, dyt, (size_t)rows, 1, x, (size_t)in,
                                        MN_FIXED_NR, g2, (size_t)in);
  pw.add = true;
  mn_fixed_gemm_portable(&pw);
  CHECK(memcmp(g1, g2, nw * sizeof(float)) == 0, "dW += dy^T x, (%d, %d) rows %d", out, in, rows);
  free(x), free(w), free(dy), free(packed), free(wt), free(dyt), free(y1), free(y2), free(g1),
      free(g2);
}

/* parts: the kernel's tree of chains is the tree of separate GEMMs over each part's run of k
 * (what reproducible mode relies on), ((p0 + p1) + (p2 + p3)) + ..., and the portable loop's. */
static float tree_sum(float **p, int lo, int hi, size_t e) {
  if (hi - lo == 1) return p[lo][e];
  const int mid = lo + (hi - lo) / 2;
  return tree_sum(p, lo, mid, e) + tree_sum(p, mid, hi, e);
}

static void check_parts(int m, int n, int kp, int parts, bool add) {
  const int k = kp * parts;
  float *a = randoms((size_t)m * k, 12), *b = randoms((size_t)k * n, 13);
  float *c0 = randoms((size_t)m * n, 14);
  const size_t nc = (size_t)m * n;
  float *fast = malloc(nc * sizeof(float)), *slow = malloc(nc * sizeof(float));
  float *want = malloc(nc * sizeof(float)), *each[64];
  memcpy(fast, c0, nc * sizeof(float)), memcpy(slow, c0, nc * sizeof(float));
  /* a transposed, as in a weight gradient: a(i, kk) = a[kk * m + i] */
  mn_fixed_gemm_args g =
      mn_fixed_view(m, n, k, a, 1, (size_t)m, b, (size_t)n, MN_FIXED_NR, NULL, (size_t)n);
  g.add = add, g.parts = parts;
  g.c = fast;
  mn_fixed_gemm(&g);
  g.c = slow;
  mn_fixed_gemm_portable(&g);
  for (int p = 0; p < parts; p++) {
    each[p] = calloc(nc, sizeof(float));
    const mn_fixed_gemm_args one =
        mn_fixed_view(m, n, kp, a + (size_t)p * kp * m, 1, (size_t)m, b + (size_t)p * kp * n,
                      (size_t)n, MN_FIXED_NR, each[p], (size_t)n);
    mn_fixed_gemm(&one);
  }
  for (size_t e = 0; e < nc; e++)
    want[e] = add ? c0[e] + tree_sum(each, 0, parts, e) : tree_sum(each, 0, parts, e);
  CHECK(memcmp(fast, slow, nc * sizeof(float)) == 0,
        "m %d n %d k %d in %d parts: kernel and portable loop differ", m, n, k, parts);
  CHECK(memcmp(fast, want, nc * sizeof(float)) == 0,
        "m %d n %d k %d in %d parts: not the tree of the parts' GEMMs", m, n, k, parts);
  /* b packed in panels a part at a time (mn_fixed_pack_rows), a as rows contiguous in k */
  float *packed = malloc(mn_fixed_packed_size(n, k) * sizeof(float));
  float *at = malloc((size_t)m * k * sizeof(float)), *viapack = malloc(nc * sizeof(float));
  for (int p = 0; p < parts; p++)
    mn_fixed_pack_rows(kp, n, b + (size_t)p * kp * n, k, p * kp, packed);
  for (int i = 0; i < m; i++)
    for (int kk = 0; kk < k; kk++) at[(size_t)i * k + kk] = a[(size_t)kk * m + i];
  memcpy(viapack, c0, nc * sizeof(float));
  mn_fixed_gemm_args pk = mn_fixed_view(m, n, k, at, (size_t)k, 1, packed, MN_FIXED_NR,
                                        (size_t)MN_FIXED_NR * k, viapack, (size_t)n);
  pk.add = add, pk.parts = parts;
  mn_fixed_gemm(&pk);
  CHECK(memcmp(viapack, want, nc * sizeof(float)) == 0,
        "m %d n %d k %d in %d parts: packed operands give other bits", m, n, k, parts);
  free(packed), free(at), free(viapack);
  for (int p = 0; p < parts; p++) free(each[p]);
  free(a), free(b), free(c0), free(fast), free(slow), free(want);
}

int main(void) {
  const int ms[] = {1, 2, 5, 6, 7, 12, 16, 17}, ns[] = {1, 7, 8, 9, 16, 17, 31, 32, 40};
  const int ks[] = {1, 3, 16, 100};
  for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
    for (size_t j = 0; j < sizeof ns / sizeof *ns; j++)
      for (size_t l = 0; l < sizeof ks / sizeof *ks; l++)
        for (int add = 0; add < 2; add++) check_shape(ms[i], ns[j], ks[l], add);
  check_rows_independent(16, 40, 300);
  check_rows_independent(33, 256, 64);
  check_views(16, 784, 256);
  check_views(16, 256, 10);
  check_views(3, 37, 21);
  const int parts[] = {1, 2, 4, 8, 32}, pms[] = {1, 6, 13}, pns[] = {9, 16, 40};
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
    for (size_t j = 0; j < sizeof pms / sizeof *pms; j++)
      for (size_t l = 0; l < sizeof pns / sizeof *pns; l++)
        for (int add = 0; add < 2; add++) {
          check_parts(pms[j], pns[l], 3, parts[i], add);
          check_parts(pms[j], pns[l], 16, parts[i], add);
        }
  return check_report("test_fixed_gemm");
}
