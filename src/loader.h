/* loader.h: a prefetch thread that assembles the next local batch while the current step
 * computes (design step 2).
 *
 * The loader owns two batch buffers. While the trainer works on step s from one of them, the
 * thread gathers step s + 1 into the other: it asks `rows_for_step` which local rows that step
 * takes, and how many (the sampler decides; the loader does not know about ranks), and
 * converts them from the in-memory split (uint8 -> float fused into the copy). mn_loader_next()
 * hands over a ready batch and starts the following one. No allocation after mn_loader_init(). The
 * thread never calls MPI or HDF5. */
#ifndef MN_LOADER_H
#define MN_LOADER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "augment.h"
#include "dataset.h"
#include "stream.h"

/* Which local rows step `step` takes: returns how many; *pos gets where they start in the
 * epoch's order of this rank's rows (a stream's position), and rows, unless NULL, the rows. */
typedef int (*mn_rows_fn)(void *user, long long step, size_t *pos, uint32_t *rows);

typedef struct {
  float *x;
  int32_t *y;
  float *t;
  uint32_t *rows;
  uint64_t *ids; /* dataset row of each sample (dropout masks) */
  int count;     /* rows in this batch (at most the loader's batch) */
  long long step;
} mn_batch;

typedef struct {
  const mn_split *split;
  int batch; /* the most rows a step takes: the buffers' size */
  mn_rows_fn rows_for_step;
  void *user;
  uint64_t row_offset; /* dataset row of local row 0 */
  mn_batch buf[2];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long long requested[2]; /* step last requested into each buffer, -1: none */
  bool ready[2];          /* the buffer holds its requested step */
  bool stop, started, threaded;
  bool poll;            /* the thread may poll for requests: it has a CPU of its own */
  atomic_bool polling;  /* it polls now, instead of sleeping (loader.c) */
  mn_stream *stream;    /* when set, rows come from it instead of split (stream.h) */
  long steps_per_epoch; /* with a stream or augmentation: step -> epoch */
  bool failed;          /* the stream could not read: message in stream->error */
  const mn_augment *aug; /* [augment] applied to every batch (augment.h), or NULL */
  uint64_t aug_seed;
  const float *aug_pad; /* each position's normalised raw 0 */
  float *aug_scratch;   /* one image */
} mn_loader;

/* Allocates the buffers; threaded = false gathers synchronously (for comparison). */
int mn_loader_init(mn_loader *l, const mn_split *split, int batch, mn_rows_fn rows, void *user,
                   uint64_t row_offset, bool threaded, mn_err *err);
/* Takes rows from a stream instead of the in-memory split: step s is the positions that
 * rows_for_step gives, in epoch s / steps_per_epoch. Before start. */
void mn_loader_use_stream(mn_loader *l, mn_stream *stream, long steps_per_epoch);
/* Augments every batch (augment.h) as it is assembled: step s is epoch s / steps_per_epoch;
 * pad holds each image position's normalised raw 0 (mn_source's b). Before start. */
int mn_loader_augment(mn_loader *l, const mn_augment *a, uint64_t seed, long steps_per_epoch,
                      const float *pad, mn_err *err);
/* Starts producing from step `first`. */
void mn_loader_start(mn_loader *l, long long first);
/* The batch of `step` (which must be the next in sequence); prefetches step + 1. The batch
 * stays valid until the following call. NULL if a stream failed to read (l->stream->error). */
const mn_batch *mn_loader_next(mn_loader *l, long long step);
void mn_loader_destroy(mn_loader *l);

#endif
