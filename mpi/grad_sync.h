/* grad_sync.h: gradient averaging across ranks.
 *
 * The loss already scales each sample's gradient by 1 / global batch, so a plain MPI_SUM
 * over the ONE contiguous gradient buffer is the global mean: one call, no division pass.
 * The buffer carries MN_GRAD_TAIL extra floats after the gradients: per-rank flags (a
 * non-finite loss) ride along in the same allreduce, so every rank learns of a fault at the
 * same step without an extra collective. */
#ifndef MN_GRAD_SYNC_H
#define MN_GRAD_SYNC_H

#include <stddef.h>

#include "world.h"

/* Sums n floats (gradients plus tail) over all ranks, in place. */
void mn_grad_allreduce(const mn_world *w, float *buf, size_t n);
/* Sums n doubles over all ranks in place; `user` is the mn_world (mn_pass's callback, for
 * SyncBN statistics). */
void mn_allreduce_doubles(void *user, double *buf, size_t n);
/* Averages a float buffer over all ranks (batch norm running statistics). */
void mn_average_floats(const mn_world *w, float *buf, size_t n);
/* Copies rank 0's buffer to every rank (parameters at start, after resume). */
void mn_bcast_floats(const mn_world *w, float *buf, size_t n);

#endif
