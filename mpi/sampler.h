/* sampler.h: which rows each rank trains on at each step.
 *
 * global: every rank holds all n rows. Epoch e's order is a permutation that depends only on
 *   (seed, e); global batch b is rows [b*B, (b+1)*B) of it and rank r takes the r-th
 *   contiguous B/N of those. So the union over ranks is exactly what one rank would train
 *   on, whatever N is.
 * shard: rank r holds only rows [r*n/N, (r+1)*n/N) and shuffles them each epoch with a
 *   permutation of (seed, e, r).
 * In both modes every rank takes the same number of steps per epoch (the last partial batch
 * is dropped everywhere): a rank running out of data first is what hangs real jobs. */
#ifndef MN_SAMPLER_H
#define MN_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum { MN_SHUFFLE_GLOBAL, MN_SHUFFLE_SHARD } mn_shuffle_mode;
extern const char *const mn_shuffle_names[];

typedef struct {
  mn_shuffle_mode mode;
  int rank, size;
  uint64_t seed;
  size_t rows;       /* rows in the whole training split */
  size_t held_begin; /* rows [held_begin, held_begin + held) are in this rank's memory */
  size_t held;
  int global_batch, local_batch;
  long steps_per_epoch;
  uint32_t *perm; /* current epoch's order (rows or held rows) */
  long perm_epoch;
} mn_sampler;

/* Computes the rows this rank must hold and the steps per epoch. */
int mn_sampler_init(mn_sampler *s, mn_shuffle_mode mode, int rank, int size, uint64_t seed,
                    size_t rows, int global_batch, mn_err *err);
void mn_sampler_free(mn_sampler *s);
/* Local indices (into the held rows) of this rank's part of step `step` of `epoch`. */
void mn_sampler_batch(mn_sampler *s, long epoch, long step, uint32_t *out);

#endif
