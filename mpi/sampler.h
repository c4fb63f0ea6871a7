/* sampler.h: which rows each rank trains on at each step.
 *
 * A global batch of B rows is split over N ranks as evenly as it goes: B mod N ranks take
 * ceil(B/N) rows and the others floor(B/N). Which ranks take the extra row rotates from step
 * to step (the offset of step t of epoch e is (h(seed, e) + t) mod N), so over every N steps
 * each rank takes the same number of rows; it is a pure function of (seed, epoch, step, N),
 * so a resumed run splits as the uninterrupted one did. The loss is scaled by 1/B and the
 * gradients are summed, so the split changes only the order of additions.
 *
 * global: every rank holds all n rows. Epoch e's order is a permutation that depends only on
 *   (seed, e); global batch b is rows [b*B, (b+1)*B) of it and rank r takes the r-th
 *   contiguous part of those (its share, after the shares of ranks 0..r-1). So the union over
 *   ranks is exactly what one rank would train on, whatever N is.
 * shard: rank r holds only rows [r*n/N, (r+1)*n/N), shuffles them each epoch with a
 *   permutation of (seed, e, r), and takes its share of each step from the front of that
 *   order. Steps per epoch come from the shard that runs out first, counting the extra rows
 *   it could be given.
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
  int global_batch;
  int base, extra; /* each step: `extra` ranks take base + 1 rows, the others base */
  int max_local;   /* the most rows a rank takes in a step: base + (extra > 0) */
  long steps_per_epoch;
  uint32_t *perm; /* current epoch's order (rows or held rows) */
  long perm_epoch;
} mn_sampler;

/* Computes the rows this rank must hold and the steps per epoch. */
int mn_sampler_init(mn_sampler *s, mn_shuffle_mode mode, int rank, int size, uint64_t seed,
                    size_t rows, int global_batch, mn_err *err);
void mn_sampler_free(mn_sampler *s);
/* This rank's part of step `step` of `epoch`: returns how many rows it takes (floor or ceil
 * of B/N); *pos, unless NULL, gets where they start in the epoch's order (in the global
 * permutation in global mode; in the order of the rank's own rows in shard mode: a stream's
 * position); out, unless NULL, gets their local indices (into the held rows). */
int mn_sampler_batch(mn_sampler *s, long epoch, long step, size_t *pos, uint32_t *out);

#endif
