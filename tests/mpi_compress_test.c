/* mpi_compress_test.c: the 16-bit gradient sums of compress.h, under mpirun.
 *
 *  1. Conversions: every one of the 65536 bf16 and fp16 values decodes as the compiler's
 *     own types do (where it has _Float16), and encoding rounds to nearest, ties to even,
 *     checked against a slow reference on values around every rounding boundary.
 *  2. The sum: rank r's values have mixed magnitudes and signs; every rank rebuilds all
 *     ranks' inputs and checks, per value, |sum16 - exact| <= gamma_N * sum |x_r| (+ the
 *     fp16 absolute floor), the error bound of N roundings to unit roundoff u (2^-8 bf16,
 *     2^-11 fp16); that every rank holds the same bits; and that the result differs from
 *     the float32 sum somewhere (so 16 bits were really summed).
 *  3. Error feedback: step after step, value i is sent by rank i % N (the others send 0 there,
 *     so every partial sum is exact and only the senders' rounding shows), and its small part
 *     (2^-10 relative) falls below a bf16 step. Without the residual (zeroed before each
 *     pack) the small part never arrives: the received total misses 2^-10 of it. With it,
 *     the total misses at most the last step's residual: half a bf16 step of one value.
 *     (The rounding of partial sums inside the allreduce belongs to no rank and is not fed
 *     back: that is what the bound of part 2 covers.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "rng.h"

static int failed;
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL: " __VA_ARGS__);                                                       \
      fputc('\n', stderr);                                                                         \
      failed = 1;                                                                                  \
    }                                                                                              \
  } while (0)

/* The nearest value of a format with p significant bits and minimum exponent emin (ties to
 * even), computed in double: the reference for encoding. */
static double round_ref(double x, int p, int emin, double max) {
  if (x == 0.0 || !isfinite(x)) return x;
  int e;
  frexp(fabs(x), &e); /* |x| in [2^(e-1), 2^e) */
  int exp = e - 1 < emin ? emin : e - 1;
  const double ulp = ldexp(1.0, exp - (p - 1));
  double q = nearbyint(x / ulp) * ulp; /* nearbyint: ties to even in the default mode */
  if (fabs(q) > max) q = copysign(INFINITY, x);
  return q;
}

static void conversions(int rank) {
  if (rank != 0) return;
  for (uint32_t h = 0; h < 65536; h++) {
    const float b = mn_bf16_to_float((uint16_t)h), f = mn_fp16_to_float((uint16_t)h);
    uint32_t bits;
    memcpy(&bits, &b, 4);
    CHECK(bits == h << 16, "bf16 %04x decodes to %08x", h, bits);
    if (!isnan(b)) CHECK(mn_bf16_from_float(b) == h, "bf16 %04x does not round-trip", h);
    if (!isnan(f)) CHECK(mn_fp16_from_float(f) == h, "fp16 %04x does not round-trip", h);
#ifdef __FLT16_MAX__
    _Float16 ref;
    uint16_t hh = (uint16_t)h;
    memcpy(&ref, &hh, 2);
    CHECK(isnan(f) ? isnan((float)ref) : f == (float)ref, "fp16 %04x decodes to %g, not %g", h,
          (double)f, (double)(float)ref);
#endif
  }
  /* values next to every boundary: random floats across the ranges, and exact midpoints */
  const double bf_max = 3.3895313892515355e38, fp_max = 65504.0;
  for (uint64_t i = 0; i < 2000000; i++) {
    const float x =
        (mn_rng_uniform(3, 0, i) - 0.5f) * ldexpf(1.0f, (int)mn_rng_below(3, 1, i, 80) - 40);
    CHECK(mn_bf16_to_float(mn_bf16_from_float(x)) == (float)round_ref(x, 8, -126, bf_max),
          "bf16 rounds %a wrong", (double)x);
    CHECK(mn_fp16_to_float(mn_fp16_from_float(x)) == (float)round_ref(x, 11, -14, fp_max),
          "fp16 rounds %a wrong", (double)x);
  }
  for (uint32_t h = 0; h < 0x7bff; h++) { /* ties between neighbouring fp16 values */
    const double mid =
        0.5 * ((double)mn_fp16_to_float((uint16_t)h) + (double)mn_fp16_to_float((uint16_t)(h + 1)));
    CHECK(mn_fp16_from_float((float)mid) == ((h & 1) ? h + 1 : h), "fp16 tie at %04x", h);
  }
  CHECK(isinf(mn_fp16_to_float(mn_fp16_from_float(65520.0f))), "65520 must overflow in fp16");
  CHECK(mn_fp16_to_float(mn_fp16_from_float(65519.0f)) == 65504.0f, "65519 rounds to 65504");
}

static float value(int rank, size_t i) {
  const float u = mn_rng_uniform(11, (uint64_t)rank, i) - 0.5f;
  return u * ldexpf(1.0f, (int)mn_rng_below(11, 100 + (uint64_t)rank, i, 16) - 12);
}

static void sums(const mn_world *w, mn_compress_kind kind) {
  const size_t n = 100003;
  mn_compress c;
  mn_err err;
  if (mn_compress_init(&c, kind, n, w->size, &err) != 0) {
    CHECK(0, "%s", err.msg);
    return;
  }
  float *buf = malloc((n + 3) * sizeof *buf), *plain = malloc((n + 3) * sizeof *plain);
  for (size_t i = 0; i < n + 3; i++) buf[i] = plain[i] = value(w->rank, i);
  mn_compress_allreduce(&c, buf, 0, n + 3, w->comm); /* 3 float32 values after the 16-bit ones */
  MPI_Allreduce(MPI_IN_PLACE, plain, (int)(n + 3), MPI_FLOAT, MPI_SUM, w->comm);
  const double u = kind == MN_COMPRESS_BF16 ? ldexp(1.0, -8) : ldexp(1.0, -11);
  const double gamma = w->size * u / (1.0 - w->size * u);
  const double floor16 = kind == MN_COMPRESS_FP16 ? w->size * ldexp(1.0, -25) / c.scale : 0.0;
  size_t differs = 0, worst_i = 0;
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double exact = 0.0, abs_sum = 0.0;
    for (int r = 0; r < w->size; r++) exact += value(r, i), abs_sum += fabs(value(r, i));
    const double ratio = fabs(buf[i] - exact) / (gamma * abs_sum + floor16);
    if (ratio > worst) worst = ratio, worst_i = i;
    differs += buf[i] != plain[i];
  }
  CHECK(worst <= 1.0, "%s at %d ranks: value %zu is %.3g of the bound off the exact sum",
        mn_compress_names[kind], w->size, worst_i, worst);
  CHECK(differs > 0, "%s: the 16-bit sum equals the float32 sum everywhere",
        mn_compress_names[kind]);
  for (size_t i = n; i < n + 3; i++)
    CHECK(buf[i] == plain[i], "%s: the float32 tail was not summed in float32",
          mn_compress_names[kind]);
  /* every rank the same bits */
  float *first = malloc((n + 3) * sizeof *first);
  memcpy(first, buf, (n + 3) * sizeof *first);
  MPI_Bcast(first, (int)(n + 3), MPI_FLOAT, 0, w->comm);
  CHECK(memcmp(first, buf, (n + 3) * sizeof *buf) == 0, "%s: rank %d holds other bits than rank 0",
        mn_compress_names[kind], w->rank);
  if (w->rank == 0)
    printf("%s at %d ranks: worst error %.3f of the 16-bit bound; %zu of %zu sums differ from "
           "float32's; every rank the same bits\n",
           mn_compress_names[kind], w->size, worst, differs, n);
  free(first), free(buf), free(plain);
  mn_compress_free(&c);
}

/* Sends x (1 + 2^-10 relative) for `steps` steps: the received total against steps * N * x. */
static double feedback(const mn_world *w, bool keep_residual, int steps) {
  const size_t n = 64;
  mn_compress c;
  mn_err err;
  mn_compress_init(&c, MN_COMPRESS_BF16, n, w->size, &err);
  float *g = malloc(n * sizeof *g);
  double worst = 0.0;
  double *total = calloc(n, sizeof *total);
  for (int s = 0; s < steps; s++) {
    for (size_t i = 0; i < n; i++)
      g[i] =
          (int)(i % (size_t)w->size) == w->rank ? ldexpf(1.0f + 0x1p-10f, (int)i % 8 - 10) : 0.0f;
    if (!keep_residual) memset(c.residual, 0, n * sizeof *c.residual);
    mn_compress_allreduce(&c, g, 0, n, w->comm);
    for (size_t i = 0; i < n; i++) total[i] += g[i];
  }
  for (size_t i = 0; i < n; i++) {
    const double x = ldexp(1.0 + 0x1p-10, (int)i % 8 - 10), want = (double)steps * x;
    const double rel = fabs(total[i] - want) / want;
    if (rel > worst) worst = rel;
  }
  free(g), free(total);
  mn_compress_free(&c);
  return worst;
}

int main(int argc, char **argv) {
  mn_world w;
  mn_world_init(&argc, &argv, &w);
  conversions(w.rank);
  sums(&w, MN_COMPRESS_BF16);
  sums(&w, MN_COMPRESS_FP16);
  const int steps = 64;
  const double lost = feedback(&w, false, steps), kept = feedback(&w, true, steps);
  /* plain rounding drops the 2^-10 part every step: 2^-10 / (1 + 2^-10) of the total */
  CHECK(lost > 0.9 * 0x1p-10, "without error feedback the small part should be lost (%.3g)", lost);
  /* with it, what is missing is at most the last step's residual: half a bf16 step (2^-8
   * relative) of one step's value, spread over `steps` steps */
  const double bound = 0x1p-8 / steps;
  CHECK(kept <= bound, "with error feedback the total is %.3g off (bound %.3g)", kept, bound);
  if (w.rank == 0)
    printf("error feedback: %d steps of a value whose 2^-10 part falls below a bf16 step: total "
           "off by %.2e without it, %.2e with it (bound %.2e)\n",
           steps, lost, kept, bound);
  int any;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, w.comm);
  mn_world_finalize();
  return any ? 1 : 0;
}
