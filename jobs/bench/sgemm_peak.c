/* sgemm_peak.c: the single-thread OpenBLAS SGEMM rate on this machine, the yardstick the
 * benchmark suite compares model throughput against. Prints one JSON line:
 *   {"sgemm_gflops": G, "m": M, "n": N, "k": K, "threads": 1}
 * usage: mpinet_sgemm_peak [SIZE] (square, default 1024; best of 5 runs of 4 calls each)
 *        mpinet_sgemm_peak --mlp BATCH IN H1 ... OUT
 *   the GEMMs alone of one training step of that MLP, with the calls and layouts of
 *   src/layers/dense.c (forward X W^T, weight gradient dY^T X, input gradient dY W except for
 *   the first layer): the ceiling a dense network can reach with this BLAS, prints
 *   {"mlp_gemm_gflops": G, ...} (best of 5 runs of 10 steps) */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

static int mlp(int argc, char **argv) {
  enum { MAX = 16 };
  int dims[MAX], nd = argc - 3, batch = atoi(argv[2]);
  if (nd < 2 || nd > MAX || batch < 1) return 2;
  size_t big = (size_t)batch;
  for (int i = 0; i < nd; i++) {
    dims[i] = atoi(argv[3 + i]);
    if (dims[i] < 1) return 2;
    if ((size_t)dims[i] > big) big = (size_t)dims[i];
  }
  openblas_set_num_threads(1);
  float *x = calloc(big * big, sizeof(float)), *w = calloc(big * big, sizeof(float)),
        *y = calloc(big * big, sizeof(float)), *g = calloc(big * big, sizeof(float));
  if (!x || !w || !y || !g) return 1;
  double flops = 0.0;
  for (int l = 0; l + 1 < nd; l++) {
    const double mac = (double)batch * dims[l] * dims[l + 1];
    flops += 2 * mac * (l == 0 ? 2 : 3); /* forward, weight gradient, input gradient */
  }
  double best = 0.0;
  for (int rep = 0; rep < 6; rep++) {
    double t0 = mn_now_s();
    for (int step = 0; step < 10; step++) {
      for (int l = 0; l + 1 < nd; l++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, dims[l + 1], dims[l], 1.0f, x,
                    dims[l], w, dims[l], 1.0f, y, dims[l + 1]);
      for (int l = nd - 2; l >= 0; l--) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dims[l + 1], dims[l], batch, 1.0f, y,
                    dims[l + 1], x, dims[l], 1.0f, g, dims[l]);
        if (l > 0)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, dims[l], dims[l + 1], 1.0f,
                      y, dims[l + 1], w, dims[l], 0.0f, x, dims[l]);
      }
    }
    const double gflops = 10 * flops / (mn_now_s() - t0) / 1e9;
    if (rep > 0 && gflops > best) best = gflops; /* the first run warms up */
  }
  printf("{\"mlp_gemm_gflops\": %.1f, \"batch\": %d, \"layers\": %d, \"threads\": 1}\n", best,
         batch, nd - 1);
  free(x), free(w), free(y), free(g);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && argv[1][0] == '-' && argv[1][1] == '-') {
    int rc = argc > 4 && strcmp(argv[1], "--mlp") == 0 ? mlp(argc, argv) : 2;
    if (rc == 2) fprintf(stderr, "usage: mpinet_sgemm_peak [SIZE] | --mlp BATCH IN H1 ... OUT\n");
    return rc;
  }
  const int n = argc > 1 ? atoi(argv[1]) : 1024;
  if (n < 16 || n > 8192) {
    fprintf(stderr, "usage: mpinet_sgemm_peak [SIZE 16..8192]\n");
    return 2;
  }
  openblas_set_num_threads(1);
  float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
        *c = malloc(sizeof(float) * n * n);
  if (!a || !b || !c) return 1;
  for (long i = 0; i < (long)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
  double best = 0.0;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = mn_now_s();
    for (int i = 0; i < 4; i++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                  n);
    double gflops = 4 * 2.0 * n * (double)n * n / (mn_now_s() - t0) / 1e9;
    if (gflops > best) best = gflops;
  }
  printf("{\"sgemm_gflops\": %.1f, \"m\": %d, \"n\": %d, \"k\": %d, \"threads\": 1}\n", best, n, n,
         n);
  free(a), free(b), free(c);
  return 0;
}
