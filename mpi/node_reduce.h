/* node_reduce.h: the gradient sum of ranks that share one node's memory, computed in place
 * in a shared window instead of sent through MPI.
 *
 * On one node MPI moves a gradient bucket by copying it through shared-memory FIFOs, and
 * on a 2-core machine nothing advances those copies while both cores compute backward:
 * the ring allreduce of the MLP's 0.94 MB took 115 us of a 1.1 ms step after both ranks
 * arrived. Here every rank's backward writes straight into its own segment of one
 * shared window (a file in /dev/shm that every rank of the node maps); the buffer is cut
 * into chunks, and each chunk is summed once, by whichever rank claims it first, into a
 * shared result that every rank's optimizer then reads. No copy in, no copy out, and the
 * ranks that finish backward early do most of the adding instead of waiting. (Each rank
 * adding every chunk itself inside its own update, with no shared result, was measured:
 * 0.5% faster, within noise, since backward then takes back from the peer's cache all the
 * lines of its segment that the peer read, instead of half; jobs/bench/README.md.)
 *
 * Protocol (all counters monotonic across reductions, so nothing is ever reset):
 *  - ready[r] = gen * (n + 1) + upto: rank r's gradients [0, upto) of reduction `gen` are
 *    final (release store after backward wrote them);
 *  - next: the next chunk ticket (gen * nchunks + c); a rank claims chunk c with a CAS once
 *    every rank's ready covers it, sums the segments in rank order (the same bits whoever
 *    adds) into result, then adds 1 to done;
 *  - the reduction is over when done = (gen + 1) * nchunks;
 *  - a rank's first publication of its whole segment is its arrival at the sum; it stores
 *    the time (CLOCK_MONOTONIC, one clock for the node's processes) in its line first, so
 *    that after the sum every rank can tell how long it waited for the node's last rank
 *    (waited_s): the step's load imbalance, as opposed to the adding that follows the last
 *    arrival, which every rank waits for. Across nodes the MPI sum's own waiting is not
 *    split: it counts as after.
 * Nothing is overwritten too early: a rank writes its segment again only after its
 * optimizer, which starts after `done`, when every read of the segment is over; and result
 * chunk c of reduction gen + 1 is written only when every rank has published its
 * gradients of gen + 1, i.e. has finished its optimizer's reading of gen.
 * On several nodes (each with the same number L >= 2 of ranks) the node's sum is then summed
 * across nodes: local rank l allreduces slice l of the result (1/L of it) with the ranks of
 * local index l on the other nodes, so the L ranks of a node use the network side by side,
 * and adds 1 to xdone; the sum is complete when xdone = (gen + 1) * L. Bits: each node adds
 * in rank order, then MPI adds the nodes' sums (at 2 nodes: a + b).
 * Waiting spins, yielding the CPU when ranks share cores (oversubscribed runs). A rank that
 * dies takes the job down through the launcher; one that hangs leaves its peers spinning
 * in the allreduce phase, which the watchdog (watchdog.h) turns into an abort. */
#ifndef MN_NODE_REDUCE_H
#define MN_NODE_REDUCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compress.h"
#include "world.h"

typedef struct mn_node_ctl mn_node_ctl;

typedef struct {
  MPI_Comm comm;  /* the node's ranks */
  MPI_Comm cross; /* the ranks of this local index on every node */
  int nodes;
  size_t slice_lo, slice_hi; /* this rank's slice of result across nodes */
  unsigned char *base;       /* the shared mapping */
  size_t bytes;
  int rank, size;
  size_t n;     /* floats per segment (gradients and tail) */
  size_t chunk; /* floats per chunk */
  size_t nchunks;
  float **seg;   /* [size]: each rank's gradient buffer */
  float *result; /* the sum */
  mn_node_ctl *ctl;
  uint64_t gen; /* reductions completed */
  bool yield;   /* ranks share CPUs: give the core away while waiting */
  bool arrived; /* this reduction's whole segment is published */
  uint64_t arrived_ns; /* when (CLOCK_MONOTONIC) */
  double waited_s;     /* the last sum: from this rank's arrival to the node's last rank's */
  mn_compress *comp;   /* not NULL: the sum across nodes goes in 16 bits (compress.h) */
} mn_node_reduce;

/* Whether the ranks of w can sum through their nodes' shared memory (collective: the same
 * answer everywhere): at least 2 ranks on every node, the same number on each. If not, *why
 * says why (a static string). Whether /dev/shm has room is for mn_node_reduce_init to say.
 * MPINET_TEST_NODE_RANKS=k (a test hook) makes "nodes" of k consecutive ranks, so that one
 * machine can run the several-node sum. */
bool mn_node_reduce_possible(const mn_world *w, const char **why);
/* Collective over w: allocates the shared window (in /dev/shm) for n floats per rank.
 * Returns 0, or -1 with err set (every rank gets the same result: a full /dev/shm on any
 * node fails them all). */
int mn_node_reduce_init(mn_node_reduce *r, const mn_world *w, size_t n, size_t chunk, mn_err *err);
/* This rank's segment: bind the network's gradients to it (mn_net_bind_grads). */
static inline float *mn_node_reduce_own(const mn_node_reduce *r) { return r->seg[r->rank]; }
/* This rank's gradients [0, upto) are final (called during backward). Only announces it:
 * the ranks that wait in mn_node_reduce_finish add what becomes complete, while this one
 * goes on computing (adding here made the last rank, the one everyone waits for, do the
 * adding: 1-2% slower for the MLP at 2 ranks). Nor does adding pay inside backward in small
 * pieces: slices of 128-4096 floats added between the weight-gradient GEMM's tiles, the
 * next slice prefetched, took 15-20 us a step from the MLP's exposed sum at 2 ranks and
 * added 35-40 us to its backward (2026-11-28, a throw-away patch): the cores are busy, and
 * what crosses between them costs the same inside a GEMM as after it. */
void mn_node_reduce_ready(mn_node_reduce *r, size_t upto);
/* This rank's gradients are all final (tail included); returns when the sum is complete in
 * r->result. */
void mn_node_reduce_finish(mn_node_reduce *r);
/* Collective. */
void mn_node_reduce_free(mn_node_reduce *r);

#endif
