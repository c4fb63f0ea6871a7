/* compress.h: 16-bit gradient sums across nodes, with error feedback ([train]
 * grad_compression = bf16 | fp16).
 *
 * Before a range of gradients is sent, each value v = g + r (the gradient plus this rank's
 * residual from the last step) is rounded to 16 bits q, and r = v - q is kept for the next
 * step: what rounding leaves out of one step is sent in a later one instead of being lost
 * (error feedback; without it, an update smaller than half a 16-bit step of the parameter's
 * gradient never arrives). The ranks sum the 16-bit values with a user-defined MPI_Op that
 * adds each pair in float32 and rounds the partial sum back to 16 bits: every partial sum of
 * the allreduce is rounded, not just the ranks' inputs, so the result depends on the
 * algorithm's order like any float sum, and carries one rounding per addition. Those
 * roundings belong to no rank and are not fed back: a sum of N ranks' values is within
 * gamma_N = N u / (1 - N u) of sum |x_r| of the exact sum (u = 2^-8 bf16, 2^-11 fp16), which
 * tests/mpi_compress_test.c checks.
 *
 * bf16 keeps float32's exponent range (8 bits of mantissa); fp16 keeps 11 bits of mantissa
 * in a range of 6e-8 to 65504, so its values are multiplied first by a power of two
 * (`scale`, the smallest >= the world size: each rank's share of the global mean becomes
 * about its local mean) and divided after; a sum that overflows comes back as infinity and
 * the trainer treats it as a non-finite gradient. Scaling by a power of two is exact. Only
 * [0, n) is compressed: the step records after the gradients (step_record.h) always travel
 * as float32. */
#ifndef MN_COMPRESS_H
#define MN_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "world.h"

typedef enum { MN_COMPRESS_NONE, MN_COMPRESS_BF16, MN_COMPRESS_FP16 } mn_compress_kind;
extern const char *const mn_compress_names[]; /* "none", "bf16", "fp16" */

typedef struct {
  mn_compress_kind kind;
  size_t n;         /* values that are compressed: [0, n) */
  uint16_t *half;   /* what is sent, n values */
  float *residual;  /* error feedback: what rounding left out, per value (this rank's) */
  float scale, inv; /* multiplied before rounding, after summing (fp16; 1 for bf16) */
  MPI_Op op;        /* adds two 16-bit values in float32, rounds back */
} mn_compress;

/* kind != NONE. Residuals start at zero. Returns 0, or -1 with err set (out of memory). */
int mn_compress_init(mn_compress *c, mn_compress_kind kind, size_t n, int world_size, mn_err *err);
void mn_compress_free(mn_compress *c);
/* Rounds g[lo, hi) (hi <= n) plus residuals into half[lo, hi) and keeps the new residuals;
 * a residual that is not finite (a NaN or overflowing gradient) restarts at zero. */
void mn_compress_pack(mn_compress *c, const float *g, size_t lo, size_t hi);
/* g[lo, hi) = the summed half[lo, hi), unscaled. */
void mn_compress_unpack(const mn_compress *c, float *g, size_t lo, size_t hi);
/* Sums half[lo, hi) over comm (blocking, in place). */
void mn_compress_sum(mn_compress *c, size_t lo, size_t hi, MPI_Comm comm);
/* Sums buf[lo, hi) over comm (blocking): [lo, min(hi, n)) in 16 bits (pack, allreduce,
 * unpack), the rest in float32. */
void mn_compress_allreduce(mn_compress *c, float *buf, size_t lo, size_t hi, MPI_Comm comm);

/* Round to nearest, ties to even; NaN stays NaN, overflow becomes infinity. */
uint16_t mn_bf16_from_float(float f);
float mn_bf16_to_float(uint16_t h);
uint16_t mn_fp16_from_float(float f);
float mn_fp16_to_float(uint16_t h);

#endif
