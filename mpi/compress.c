/* compress.c: 16-bit gradient sums with error feedback (see compress.h). */
#include "compress.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

const char *const mn_compress_names[] = {"none", "bf16", "fp16", NULL};

static inline uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t mn_bf16_from_float(float f) {
  const uint32_t u = bits(f), rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded); /* NaN */
}

float mn_bf16_to_float(uint16_t h) { return from_bits((uint32_t)h << 16); }

/* cond ? a : b with masks: the fp16 conversions stay branch-free, so that the loops over a
 * bucket vectorise (the compiler does not if-convert the plain form). */
static inline uint32_t pick(uint32_t cond, uint32_t a, uint32_t b) {
  return b ^ ((a ^ b) & (0u - cond));
}

uint16_t mn_fp16_from_float(float f) {
  const uint32_t x = bits(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  const uint32_t rebased = a - 0x38000000u; /* exponent bias 127 -> 15 (normal results) */
  const uint32_t normal = (rebased + 0xfffu + ((rebased >> 13) & 1u)) >> 13;
  /* below 2^-14 the result is a multiple of 2^-24: adding 0.5 (whose last mantissa bit is
   * 2^-24) rounds |f| to one, ties to even, into the low bits (0x400: the smallest normal) */
  const uint32_t subnormal = bits(from_bits(a) + 0.5f) - 0x3f000000u;
  uint32_t r = pick(a < 0x38800000u, subnormal, normal);
  r = pick(a >= 0x477ff000u, 0x7c00u, r); /* 65520 and up, and infinity, round to infinity */
  r = pick(a > 0x7f800000u, 0x7e00u, r);  /* NaN stays (a quiet) NaN */
  return (uint16_t)(sign | r);
}

float mn_fp16_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  const float subnormal = (float)(int32_t)m * 5.9604644775390625e-8f; /* m * 2^-24 */
  uint32_t r = pick(e == 31, 0x7f800000u | (m << 13), ((e + 112u) << 23) | (m << 13));
  r = pick(e == 0, bits(subnormal), r);
  return from_bits(r | sign);
}

static void add_bf16(void *in, void *inout, int *len, MPI_Datatype *type) {
  (void)type;
  const uint16_t *a = in;
  uint16_t *b = inout;
  for (int i = 0; i < *len; i++)
    b[i] = mn_bf16_from_float(mn_bf16_to_float(a[i]) + mn_bf16_to_float(b[i]));
}

static void add_fp16(void *in, void *inout, int *len, MPI_Datatype *type) {
  (void)type;
  const uint16_t *a = in;
  uint16_t *b = inout;
  for (int i = 0; i < *len; i++)
    b[i] = mn_fp16_from_float(mn_fp16_to_float(a[i]) + mn_fp16_to_float(b[i]));
}

int mn_compress_init(mn_compress *c, mn_compress_kind kind, size_t n, int world_size, mn_err *err) {
  memset(c, 0, sizeof *c);
  c->kind = kind;
  c->n = n;
  c->scale = 1.0f;
  if (kind == MN_COMPRESS_FP16)
    while (c->scale < (float)world_size) c->scale *= 2.0f;
  c->inv = 1.0f / c->scale;
  c->half = calloc(n + 1, sizeof *c->half);
  c->residual = calloc(n + 1, sizeof *c->residual);
  if (!c->half || !c->residual) {
    mn_compress_free(c);
    return mn_fail(err, "out of memory for the 16-bit gradient buffers (%zu values)", n);
  }
  MPI_Op_create(kind == MN_COMPRESS_BF16 ? add_bf16 : add_fp16, 1, &c->op);
  return 0;
}

void mn_compress_free(mn_compress *c) {
  free(c->half);
  free(c->residual);
  if (c->op != MPI_OP_NULL && c->op != 0) MPI_Op_free(&c->op);
  memset(c, 0, sizeof *c);
}

/* A residual that is not finite restarts at zero (tested on its bits: vectorises). */
static inline float finite_or_zero(float e) {
  return (bits(e) & 0x7f800000u) != 0x7f800000u ? e : 0.0f;
}

void mn_compress_pack(mn_compress *c, const float *g, size_t lo, size_t hi) {
  uint16_t *restrict h = c->half;
  float *restrict r = c->residual;
  const float *restrict x = g;
  const float scale = c->scale, inv = c->inv;
  if (c->kind == MN_COMPRESS_BF16) {
    for (size_t i = lo; i < hi; i++) {
      const float v = x[i] + r[i];
      const uint16_t q = mn_bf16_from_float(v);
      h[i] = q;
      r[i] = finite_or_zero(v - mn_bf16_to_float(q));
    }
  } else {
    for (size_t i = lo; i < hi; i++) {
      const float v = x[i] + r[i];
      const uint16_t q = mn_fp16_from_float(v * scale);
      h[i] = q;
      r[i] = finite_or_zero(v - mn_fp16_to_float(q) * inv);
    }
  }
}

void mn_compress_unpack(const mn_compress *c, float *g, size_t lo, size_t hi) {
  const uint16_t *restrict h = c->half;
  float *restrict out = g;
  if (c->kind == MN_COMPRESS_BF16) {
    for (size_t i = lo; i < hi; i++) out[i] = mn_bf16_to_float(h[i]);
  } else {
    const float inv = c->inv;
    for (size_t i = lo; i < hi; i++) out[i] = mn_fp16_to_float(h[i]) * inv;
  }
}

#define STEP ((size_t)INT_MAX / 2) /* MPI counts are int */

void mn_compress_sum(mn_compress *c, size_t lo, size_t hi, MPI_Comm comm) {
  for (size_t at = lo; at < hi; at += STEP)
    MPI_Allreduce(MPI_IN_PLACE, c->half + at, (int)(hi - at < STEP ? hi - at : STEP), MPI_UINT16_T,
                  c->op, comm);
}

void mn_compress_allreduce(mn_compress *c, float *buf, size_t lo, size_t hi, MPI_Comm comm) {
  const size_t mid = hi < c->n ? hi : c->n > lo ? c->n : lo, step = STEP;
  if (mid > lo) {
    mn_compress_pack(c, buf, lo, mid);
    mn_compress_sum(c, lo, mid, comm);
    mn_compress_unpack(c, buf, lo, mid);
  }
  for (size_t at = mid; at < hi; at += step)
    MPI_Allreduce(MPI_IN_PLACE, buf + at, (int)(hi - at < step ? hi - at : step), MPI_FLOAT,
                  MPI_SUM, comm);
}
