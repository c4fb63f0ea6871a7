/* step_record.h: what every rank tells the others at every step, for free.
 *
 * Each rank owns MN_REC_FIELDS floats of the gradient buffer's tail and leaves the other
 * ranks' floats zero; the gradient allreduce (a sum) then hands every rank every rank's
 * record exactly (x + 0 + ... + 0 = x in any order), so all ranks read the same records and
 * reach the same verdict after the same step, without an extra collective. Integers below
 * 2^24 are exact in a float: steps and hashes are carried modulo 2^24.
 *
 * The fingerprint (step, buffer layout, steps left) catches ranks that disagree about what
 * they are reducing before the disagreement deadlocks them in a later collective: a rank
 * that consumed one batch more, or one that would leave the loop a step early. */
#ifndef MN_STEP_RECORD_H
#define MN_STEP_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
  MN_REC_LOSS,   /* 0, or 1 + the first layer whose output is non-finite (1 + nlayers: the loss) */
  MN_REC_GRAD,   /* 0, or 1 + the layer holding the first non-finite local gradient */
  MN_REC_STOP,   /* 1: a signal asked this rank to stop */
  MN_REC_STEP,   /* the step, modulo 2^24 */
  MN_REC_LAYOUT, /* a 24-bit hash of the buffer layout (gradients, buckets, tail) */
  MN_REC_LEFT,   /* steps left in this run, modulo 2^24 */
  MN_REC_FIELDS
};

/* Floats of tail a world of `size` ranks needs. */
size_t mn_record_tail(int size);

/* Zeroes the tail and writes this rank's record into its slot. */
void mn_record_write(float *tail, int size, int rank, const uint32_t rec[MN_REC_FIELDS]);

typedef struct {
  int loss_ranks, grad_ranks;   /* ranks with a non-finite loss / gradient */
  int loss_rank, grad_rank;     /* the lowest of each, -1 if none */
  int loss_layer, grad_layer;   /* on that rank: layer index, nlayers = the loss; -1 unknown */
  bool stop;                    /* some rank was asked to stop */
  int desync_ranks;             /* ranks whose fingerprint differs from rank 0's */
  char desync[512];             /* "rank 1: step 13, 37 left; rank 0: step 12, 38 left" */
} mn_record_verdict;

/* Reads the reduced tail. */
void mn_record_read(const float *tail, int size, mn_record_verdict *v);

#endif
