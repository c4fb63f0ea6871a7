/* sampler.c: the distributed sampler (global permutation or per-rank shards). */
#include "sampler.h"

#include <stdlib.h>
#include <string.h>

#include "rng.h"

const char *const mn_shuffle_names[] = {"global", "shard", NULL};

int mn_sampler_init(mn_sampler *s, mn_shuffle_mode mode, int rank, int size, uint64_t seed,
                    size_t rows, int global_batch, mn_err *err) {
  memset(s, 0, sizeof *s);
  s->mode = mode;
  s->rank = rank;
  s->size = size;
  s->seed = seed;
  s->rows = rows;
  s->global_batch = global_batch;
  s->local_batch = global_batch / size;
  s->perm_epoch = -1;
  if (mode == MN_SHUFFLE_GLOBAL) {
    s->held_begin = 0;
    s->held = rows;
    s->steps_per_epoch = (long)(rows / (size_t)global_batch);
  } else {
    s->held_begin = (size_t)rank * rows / (size_t)size;
    s->held = (size_t)(rank + 1) * rows / (size_t)size - s->held_begin;
    size_t smallest = rows / (size_t)size; /* every shard holds at least this many */
    s->steps_per_epoch = (long)(smallest / (size_t)s->local_batch);
  }
  if (s->steps_per_epoch < 1)
    return mn_fail(err,
                   "the training split has %zu rows: too few for one global batch of %d "
                   "over %d ranks",
                   rows, global_batch, size);
  s->perm = mn_alloc(s->held, sizeof(uint32_t), "sampler permutation", err);
  return s->perm ? 0 : -1;
}

void mn_sampler_free(mn_sampler *s) {
  free(s->perm);
  s->perm = NULL;
}

void mn_sampler_batch(mn_sampler *s, long epoch, long step, uint32_t *out) {
  if (s->perm_epoch != epoch) {
    uint64_t stream = MN_STREAM_SHUFFLE;
    if (s->mode == MN_SHUFFLE_SHARD) stream += (uint64_t)(s->rank + 1) << 16;
    mn_rng_permutation(s->perm, (uint32_t)s->held, s->seed, stream, (uint64_t)epoch);
    s->perm_epoch = epoch;
  }
  size_t first = s->mode == MN_SHUFFLE_GLOBAL
                     ? (size_t)step * s->global_batch + (size_t)s->rank * s->local_batch
                     : (size_t)step * s->local_batch;
  memcpy(out, s->perm + first, (size_t)s->local_batch * sizeof(uint32_t));
}
