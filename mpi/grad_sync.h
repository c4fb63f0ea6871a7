/* grad_sync.h: gradient averaging across ranks, in buckets overlapped with backward.
 *
 * The loss already scales each sample's gradient by 1 / global batch, so a plain MPI_SUM
 * over the gradient buffer is the global mean: no division pass. The buffer is cut into
 * buckets of `bucket_floats`; because layers are laid out last first, backward finishes the
 * buffer front to back, and each bucket is handed to MPI_Iallreduce the moment its last
 * gradient is final (mn_grad_sync_ready, called from backward through mn_pass). Each call
 * also tests the requests in flight, which is what makes Open MPI progress them while we
 * compute. mn_grad_sync_finish posts the rest and waits: the time spent there is the
 * exposed communication. With overlap off, everything is one allreduce at the end.
 * The buffer ends with a few spare floats (mn_net.tail, mpi/step_record.h): per-rank
 * records ride along in the last bucket, so every rank learns of a fault, a stop request or
 * a desynchronised peer at the same step without an extra collective.
 * Before a bucket is posted, its local gradients are scanned for NaN and infinity (while
 * they are hot in cache), except those backward vouched for (mn_listeners.grads_ready's
 * checked_from): a rank that produced a non-finite gradient is known by name. */
#ifndef MN_GRAD_SYNC_H
#define MN_GRAD_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "compress.h"
#include "node_reduce.h"
#include "world.h"

#define MN_MAX_BUCKETS 4096

typedef struct {
  const mn_world *w;
  float *buf;
  size_t n;             /* floats, tail included */
  size_t check;         /* floats [0, check) are scanned for non-finite values (0: none) */
  size_t scanned;       /* how far this step's scan got */
  size_t first_bad;     /* index of this step's first non-finite gradient, or SIZE_MAX */
  size_t bucket_floats; /* 0: one bucket */
  bool overlap;
  int nbuckets, posted;
  bool timing;          /* record when each bucket is posted and seen complete (timeline) */
  int timed;            /* buckets with times from the last step */
  double posted_at[MN_MAX_BUCKETS], done_at[MN_MAX_BUCKETS];
  size_t bounds[MN_MAX_BUCKETS + 1];
  MPI_Request req[MN_MAX_BUCKETS + 1]; /* + the tail's, when compressed */
  mn_node_reduce *node; /* not NULL: summed in the node's shared memory instead (one bucket) */
  mn_compress *comp;    /* not NULL: MPI sums gradients in 16 bits (compress.h) */
  size_t packed;        /* this step's gradients [0, packed) are rounded into comp->half */
} mn_grad_sync;

void mn_grad_sync_init(mn_grad_sync *s, const mn_world *w, float *buf, size_t n,
                       size_t check, size_t bucket_floats, bool overlap);
/* Sums through `node` from now on: s was initialised with one bucket (bucket_floats = n,
 * overlap on) and buf is the node's segment of this rank. */
void mn_grad_sync_use_node(mn_grad_sync *s, mn_node_reduce *node);
/* From now on MPI sums the gradients [0, comp->n) in 16 bits: in this rank's buckets, or,
 * when the node's shared memory sums first, between the nodes. */
void mn_grad_sync_compress(mn_grad_sync *s, mn_compress *comp);
/* Where the sum is after mn_grad_sync_finish: buf itself, or the node's shared result
 * (read only: every rank of the node reads it). */
static inline const float *mn_grad_sync_sum(const mn_grad_sync *s) {
  return s->node ? s->node->result : s->buf;
}
/* Before backward. */
void mn_grad_sync_begin(mn_grad_sync *s);
/* mn_listeners.grads_ready: gradients [0, upto) are final, [checked_from, upto) known finite. */
void mn_grad_sync_ready(void *user, size_t upto, size_t checked_from);
/* After backward: scans what backward left unscanned; afterwards first_bad is final and the
 * tail may be written. Sends nothing: a local SGD step (train.sync_every) calls it alone. */
void mn_grad_sync_scan_rest(mn_grad_sync *s);
/* After backward (and the tail written): posts what is left and waits for everything. */
void mn_grad_sync_finish(mn_grad_sync *s);
/* Times MPI_Allreduce on the real communicator for a few sizes (collective) and returns the
 * smallest bucket, in floats, that still moves data at >= 80% of the best rate seen: small
 * buckets start early and leave little for the end, but each costs a latency. */
size_t mn_grad_sync_pick_bucket(const mn_world *w, size_t n, double *chosen_mb);

/* Picks bucket size and overlap for THIS model by timing it (collective): each candidate
 * (no overlap; overlap with buckets of the rate-picked size and of 1/2, 1/4, 1/8 of the
 * buffer) runs `rounds` dry steps, interleaved; the candidate with the least total step
 * time, as the slowest rank saw it, wins and is left in s. `dry_step` must run forward and
 * backward through s (mn_grad_sync_begin/ready/finish) without changing the model. Returns
 * how many candidates were timed. */
int mn_grad_sync_tune(mn_grad_sync *s, void (*dry_step)(void *user), void *user, int rounds);

/* Sums n floats over all ranks, in place (one blocking allreduce). */
void mn_grad_allreduce(const mn_world *w, float *buf, size_t n);
/* Sums n doubles over all ranks in place; `user` is the mn_world (mn_pass's callback, for
 * SyncBN statistics). */
void mn_allreduce_doubles(void *user, double *buf, size_t n);
/* Replaces a float buffer by its mean over all ranks: summed, then scaled by 1/N, so every
 * rank holds the same bits (local SGD's replicas). Collective. */
void mn_mean_floats(const mn_world *w, float *buf, size_t n);
/* Averages a float buffer over all ranks (batch norm running statistics), each rank's
 * weighted by `weight` (a whole number: the rows it trained on). Equal weights, or none,
 * give the plain mean, summed then scaled by 1/N. Collective. */
void mn_average_floats(const mn_world *w, float *buf, size_t n, double weight);
/* Copies rank 0's buffer to every rank (parameters at start, after resume). */
void mn_bcast_floats(const mn_world *w, float *buf, size_t n);

#endif
