/* evaluate.h: distributed evaluation that counts every test sample exactly once.
 *
 * The test split is cut into chunks of eval_batch rows at fixed global positions; rank r
 * takes a contiguous run of whole chunks. Each chunk is computed with the same GEMM shapes
 * whatever the world size, so predictions (and the number correct) are identical at any N,
 * and no rank pads or repeats samples. */
#ifndef MN_EVALUATE_H
#define MN_EVALUATE_H

#include "dataset.h"
#include "net.h"
#include "world.h"

typedef struct {
  double loss_sum;
  double correct;
  double count;
} mn_eval_sums;

/* Rows [*begin, *end) of a `rows`-row split that `rank` evaluates (may be empty). */
void mn_eval_range(size_t rows, int eval_batch, int rank, int size, size_t *begin, size_t *end);
/* Loads this rank's part of a split (nothing if its range is empty). */
int mn_eval_load(mn_split *test, const char *path, const char *split, int eval_batch,
                 const mn_world *w, mn_err *err);
/* Evaluates the held rows; returns local sums (the caller reduces them). x, y, t are
 * scratch buffers for eval_batch rows. chunk_loss, if not NULL, receives each held chunk's
 * loss sum (reproducible mode adds them in chunk order, whatever the world size). */
void mn_eval_local(mn_net *net, const mn_split *test, int eval_batch, float *x, int32_t *y,
                   float *t, mn_eval_sums *out, double *chunk_loss);

#endif
