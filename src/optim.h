/* optim.h: SGD with momentum and L2 weight decay, and the learning-rate schedule.
 *
 * Every rank applies the same update to the same (already averaged) gradients, so the
 * optimizer needs no communication. Its state is one velocity buffer laid out like the
 * parameters, so a checkpoint stores it in the same per-layer slices. */
#ifndef MN_OPTIM_H
#define MN_OPTIM_H

#include <stddef.h>

#include "config.h"

typedef enum { MN_SCHEDULE_CONSTANT, MN_SCHEDULE_STEP, MN_SCHEDULE_COSINE } mn_schedule;
extern const char *const mn_schedule_names[];

typedef struct {
  double lr;           /* peak learning rate */
  double momentum;     /* 0 = plain SGD */
  double weight_decay; /* L2 coefficient, added to the gradient as in PyTorch's SGD */
  mn_schedule schedule;
  double warmup_epochs; /* linear warm-up from lr / warmup_steps to lr */
  long step_epochs;     /* step schedule: multiply by gamma every step_epochs */
  double gamma;
  long steps_per_epoch; /* set by the trainer once the data is known */
  long total_steps;
  size_t n;
  float *velocity; /* momentum buffer, same layout as the parameters */
} mn_sgd;

/* Reads lr, momentum, weight_decay, schedule, warmup_epochs, step_epochs, gamma from [train]. */
int mn_sgd_configure(mn_sgd *opt, mn_cfg_section *train, mn_err *err);
int mn_sgd_alloc(mn_sgd *opt, size_t nparams, mn_err *err);
void mn_sgd_free(mn_sgd *opt);
/* The learning rate used for the update at global step `step` (0-based). */
double mn_sgd_lr(const mn_sgd *opt, long step);
/* params -= lr * v, v = momentum v + g + wd p. */
void mn_sgd_step(mn_sgd *opt, float *params, const float *grads, long step);

#endif
