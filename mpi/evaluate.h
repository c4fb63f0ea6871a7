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
/* This rank's part of an evaluation split: rows [begin, begin + n), not held in memory but
 * read eval_batch rows at a time at each evaluation, so a test split costs one batch of
 * memory whatever its size (the process reads it again from the page cache each time). */
typedef struct {
  const mn_source *src; /* the test rows (borrowed) */
  size_t begin, n;      /* this rank's rows */
  mn_split window;      /* one chunk of rows as stored */
  /* if not NULL (2 * classes, zeroed by the caller), evaluation adds: with labels, the rows
   * of each class [0, K) and those classified right [K, 2K); with targets, each output's
   * sum of squared errors in the targets' units [0, K) */
  double *detail;
} mn_eval_set;

/* Opens this rank's part of a source (nothing if its range is empty) and reads it through
 * once, so a bad value or label fails the start of the job, not its first evaluation. */
int mn_eval_open(mn_eval_set *set, const mn_source *src, int eval_batch, const mn_world *w,
                 mn_err *err);
void mn_eval_close(mn_eval_set *set);
/* Evaluates this rank's rows; returns local sums (the caller reduces them), or -1 when the
 * file cannot be read again (the caller agrees on it with the other ranks). x, y, t are
 * scratch buffers for eval_batch rows. chunk_loss, if not NULL, receives each chunk's loss
 * sum (reproducible mode adds them in chunk order, whatever the world size). */
int mn_eval_local(mn_net *net, mn_eval_set *set, int eval_batch, float *x, int32_t *y, float *t,
                  mn_eval_sums *out, double *chunk_loss, mn_err *err);

#endif
