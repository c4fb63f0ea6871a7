/* repro.h: [train] reproducible = true: the same bits at every power-of-two world size.
 *
 * Data-parallel training is normally exact only at a fixed world size: the allreduce adds
 * the ranks' partial sums in an order that depends on how many there are. In this mode the
 * order is fixed by the data instead of by the ranks:
 *  - the global batch of B rows is cut into V micro-batches of B/V rows by global position
 *    (train.virtual_shards = V); rank r of N holds micro-batches [r V/N, (r+1) V/N);
 *  - each micro-batch runs forward and backward alone, with the same GEMM shapes on
 *    whichever rank, into its own zeroed buffer: its gradient has the same bits everywhere;
 *  - the V gradients are added as ONE balanced binary tree over the micro-batch index. A
 *    rank adds its block pairwise as the micro-batches finish (a subtree of the tree); the
 *    ranks then combine their subtrees with recursive halving and doubling over
 *    point-to-point messages, partner distance 1 first, so that every level adds the same
 *    two subtrees whatever N is (a + b and b + a are the same bits, so it does not matter
 *    which partner adds);
 *  - what else must not depend on N rides in the buffer's tail, each value owned by one
 *    micro-batch and zero elsewhere, so the tree hands every rank the exact values: each
 *    micro-batch's loss sum and number correct (the metrics add them in micro-batch order)
 *    and its batch-norm running-statistics update divided by V (summed by the same tree).
 * N must be a power of two that divides V, V a power of two that divides B. */
#ifndef MN_REPRO_H
#define MN_REPRO_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "net.h"
#include "world.h"

#define MN_REPRO_BUFFERS 16 /* log2(V / N) + 1 gradient buffers at most: V / N <= 2^15 */

typedef struct {
  int shards;                /* V */
  int per_rank;              /* V / N micro-batches on each rank */
  int micro;                 /* B / V rows in each */
  size_t n;                  /* floats in a gradient buffer, tail included */
  size_t delta_at, stats_at; /* tail offsets: batch-norm updates (nstate), (loss, correct) x V */
  float *own;                /* the network's own gradient buffer (freed with the network) */
  float *spare[MN_REPRO_BUFFERS]; /* zeroed buffers ready for a micro-batch */
  int nspare;
  float *mine[MN_REPRO_BUFFERS]; /* the buffers allocated here */
  int nmine;
  float *state0;  /* batch-norm running statistics at the start of the step */
  float *scratch; /* receive buffer of the tree allreduce */
  /* Dense layers defer their weight gradients to the rank's last micro-batch and write them
   * once, as this rank's subtree (mn_fixed_pass.parts): the carries leave those ranges out,
   * [skip[2 i], skip[2 i + 1]) for i < nskip, ascending. false: a test hook's plain way. */
  bool defer;
  size_t *skip;
  int nskip;
} mn_repro;

/* Tail floats this mode adds after the step records (which start at nparams). */
size_t mn_repro_tail(int shards, size_t nstate);
/* Sets up for a network whose tail already holds `records` floats of step records and then
 * mn_repro_tail(shards, nstate) more; checks that the world size fits V and V the batch. */
int mn_repro_init(mn_repro *r, mn_net *net, size_t records, int shards, int world_size,
                  int global_batch, mn_err *err);
/* Rebinds the network to its own buffer and frees the rest. */
void mn_repro_free(mn_repro *r, mn_net *net);
/* Sums buf (n floats) over a power-of-two number of ranks in the fixed tree described above:
 * recursive halving (distance 1, 2, 4, ...) then recursive doubling. Every rank ends with the
 * same bits; a rank's buf is the subtree of its contiguous block of leaves. scratch holds at
 * least n / 2 + 1 floats. */
void mn_tree_allreduce(const mn_world *w, float *buf, size_t n, float *scratch);

#endif
