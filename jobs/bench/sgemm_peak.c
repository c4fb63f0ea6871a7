/* sgemm_peak.c: the single-thread OpenBLAS SGEMM rate on this machine, the yardstick the
 * benchmark suite compares model throughput against. Prints one JSON line:
 *   {"sgemm_gflops": G, "m": M, "n": N, "k": K, "threads": 1}
 * usage: mpinet_sgemm_peak [SIZE] (square, default 1024; best of 5 runs of 4 calls each) */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
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
    double t0 = now();
    for (int i = 0; i < 4; i++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                  n);
    double gflops = 4 * 2.0 * n * (double)n * n / (now() - t0) / 1e9;
    if (gflops > best) best = gflops;
  }
  printf("{\"sgemm_gflops\": %.1f, \"m\": %d, \"n\": %d, \"k\": %d, \"threads\": 1}\n", best, n, n,
         n);
  free(a), free(b), free(c);
  return 0;
}
