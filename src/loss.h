/* loss.h: losses that turn the network output into a scalar and its gradient.
 *
 * The gradient is scaled by `grad_scale` per sample: the trainer passes 1 / global batch,
 * so summing the ranks' gradients (one MPI_SUM allreduce) already gives the global mean
 * and no separate division pass is needed. */
#ifndef MN_LOSS_H
#define MN_LOSS_H

#include <stdint.h>

#include "activation.h"

typedef enum { MN_LOSS_CROSS_ENTROPY, MN_LOSS_MSE, MN_LOSS_BCE } mn_loss_kind;
extern const char *const mn_loss_names[];

typedef struct {
  double loss_sum; /* sum over samples of the per-sample loss */
  long correct;    /* argmax(output) == label, when labels are given */
  /* in: for mse on standardised targets, each output's std: loss_sum is then in the targets'
   * own units (each squared error times std^2); the gradient stays the standardised one */
  const float *unit_scale;
} mn_loss_stats;

/* out (B, k): network output, after `final_act`. Exactly one of labels (B) / targets (B, k)
 * is non-NULL (labels become one-hot targets for mse and binary_cross_entropy). Writes
 * grad (B, k) = d(loss)/d(out), or d/d(pre-activation) when cross-entropy differentiates
 * through a softmax output (or binary cross-entropy through a sigmoid) itself.
 * grad may be NULL (evaluation). */
void mn_loss_compute(mn_loss_kind kind, mn_activation final_act, const float *out,
                     const int32_t *labels, const float *targets, int batch, int k,
                     float grad_scale, float *grad, mn_loss_stats *stats);

/* Index of the largest of k values (the first on ties). */
int mn_argmax(const float *v, int k);

#endif
