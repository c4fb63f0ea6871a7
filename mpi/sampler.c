/* sampler.c: the distributed sampler (global permutation or per-rank shards), with a global
 * batch split as evenly as the world size allows. */
#include "sampler.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

const char *const mn_shuffle_names[] = {"global", "shard", NULL};

/* the rotation of the extra rows: a stream of its own, apart from the shuffles' */
#define STREAM_SPLIT (MN_STREAM_SHUFFLE + ((uint64_t)3 << 40))

/* Step 0's offset of the ranks taking an extra row in `epoch`. */
static int epoch_offset(const mn_sampler *s, long epoch) {
  return (int)mn_rng_below(s->seed, STREAM_SPLIT, (uint64_t)epoch, (uint32_t)s->size);
}

/* Whether rank r takes an extra row when the extras start at rank `offset`. */
static int takes_extra(const mn_sampler *s, int r, long offset) {
  return (int)(((long)r - offset % s->size + s->size) % s->size) < s->extra;
}

/* Extra rows rank r takes in steps [0, steps) of an epoch whose step 0 has offset h: every
 * N steps each rank takes `extra`; the rest is counted. */
static size_t extras_before(const mn_sampler *s, int r, int h, long steps) {
  const long cycles = steps / s->size;
  size_t n = (size_t)cycles * (size_t)s->extra;
  for (long t = cycles * s->size; t < steps; t++) n += (size_t)takes_extra(s, r, h + t);
  return n;
}

/* Where rank r's rows of step `step` start in the epoch's order, the extras of the epoch
 * starting at offset h (sampler.h). */
static size_t position(const mn_sampler *s, int h, long step) {
  if (s->mode == MN_SHUFFLE_SHARD)
    return (size_t)step * (size_t)s->base + (s->extra ? extras_before(s, s->rank, h, step) : 0);
  size_t first = (size_t)step * (size_t)s->global_batch + (size_t)s->rank * (size_t)s->base;
  for (int q = 0; q < s->rank && s->extra; q++) first += (size_t)takes_extra(s, q, h + step);
  return first;
}

/* Steps a shard of `held` rows lasts: the most s such that s steps of base rows, plus the
 * most extra rows any rotation can give one rank in s steps, fit. */
static long shard_steps(const mn_sampler *s, size_t held) {
  long steps = (long)(held / (size_t)s->base);
  while (steps > 0) {
    const long rest = steps % s->size;
    const size_t most = (size_t)steps * (size_t)s->base +
                        (size_t)(steps / s->size) * (size_t)s->extra +
                        (size_t)(rest < s->extra ? rest : s->extra);
    if (most <= held) break;
    steps--;
  }
  return steps;
}

int mn_sampler_init(mn_sampler *s, mn_shuffle_mode mode, int rank, int size, uint64_t seed,
                    size_t rows, int global_batch, mn_err *err) {
  memset(s, 0, sizeof *s);
  s->mode = mode;
  s->rank = rank;
  s->size = size;
  s->seed = seed;
  s->rows = rows;
  s->global_batch = global_batch;
  s->base = global_batch / size;
  s->extra = global_batch % size;
  s->max_local = s->base + (s->extra > 0);
  s->perm_epoch = -1;
  if (s->base < 1)
    return mn_fail(err, "global batch %d is smaller than the %d ranks: every rank needs a row",
                   global_batch, size);
  if (mode == MN_SHUFFLE_GLOBAL) {
    s->held_begin = 0;
    s->held = rows;
    s->steps_per_epoch = (long)(rows / (size_t)global_batch);
  } else {
    s->held_begin = (size_t)rank * rows / (size_t)size;
    s->held = (size_t)(rank + 1) * rows / (size_t)size - s->held_begin;
    s->steps_per_epoch = shard_steps(s, rows / (size_t)size); /* the smallest shard's */
  }
  if (s->steps_per_epoch < 1)
    return mn_fail(err,
                   "the training rows are %zu: too few for one global batch of %d "
                   "over %d rank%s",
                   rows, global_batch, size, size > 1 ? "s" : "");
  s->perm = mn_alloc(s->held, sizeof(uint32_t), "sampler permutation", err);
  return s->perm ? 0 : -1;
}

void mn_sampler_free(mn_sampler *s) {
  free(s->perm);
  s->perm = NULL;
}

int mn_sampler_batch(mn_sampler *s, long epoch, long step, size_t *pos, uint32_t *out) {
  const int h = s->extra ? epoch_offset(s, epoch) : 0;
  const int count = s->base + (s->extra ? takes_extra(s, s->rank, h + step) : 0);
  const size_t first = position(s, h, step);
  if (pos) *pos = first;
  if (!out) return count;
  if (s->perm_epoch != epoch) {
    uint64_t stream = MN_STREAM_SHUFFLE;
    if (s->mode == MN_SHUFFLE_SHARD) stream += (uint64_t)(s->rank + 1) << 16;
    mn_rng_permutation(s->perm, (uint32_t)s->held, s->seed, stream, (uint64_t)epoch);
    s->perm_epoch = epoch;
  }
  memcpy(out, s->perm + first, (size_t)count * sizeof(uint32_t));
  return count;
}
