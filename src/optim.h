/* optim.h: optimizers (SGD, momentum, Nesterov, Adam, AdamW), regularisation (L2, L1,
 * per layer or global), gradient clipping by global norm, and learning-rate schedules.
 *
 * Every rank applies the same update to the same (already averaged) gradients, so the
 * optimizer needs no communication: clipping computed here, after the allreduce, clips
 * identically everywhere. Its state is one or two buffers laid out like the parameters
 * (momentum; Adam's first and second moments), saved per layer in checkpoints. */
#ifndef MN_OPTIM_H
#define MN_OPTIM_H

#include <stddef.h>

#include "config.h"
#include "net.h"

typedef enum { MN_OPT_SGD, MN_OPT_ADAM, MN_OPT_ADAMW } mn_optimizer_kind;
typedef enum { MN_SCHEDULE_CONSTANT, MN_SCHEDULE_STEP, MN_SCHEDULE_COSINE } mn_schedule;
extern const char *const mn_optimizer_names[];
extern const char *const mn_schedule_names[];

/* A run of parameters sharing regularisation coefficients (one per layer). */
typedef struct {
  size_t offset, count;
  float l2, l1;
} mn_reg_segment;

#define MN_OPT_MAX_BUFFERS 2

typedef struct {
  mn_optimizer_kind kind;
  double lr;       /* peak learning rate, after lr_scaling */
  double base_lr;  /* as configured */
  double momentum; /* SGD; 0 = plain SGD */
  bool nesterov;
  double beta1, beta2, eps; /* Adam, AdamW */
  double weight_decay;      /* L2 (AdamW: decoupled decay) unless a layer overrides it */
  double l1;
  double clip_norm;    /* clip the global gradient norm to this; 0 = off */
  bool linear_scaling; /* lr is per 256 samples, scaled to the global batch */
  mn_schedule schedule;
  double warmup_epochs; /* linear warm-up from lr / warmup_steps to lr */
  long step_epochs;     /* step schedule: multiply by gamma every step_epochs */
  double gamma;
  long steps_per_epoch; /* set by mn_optim_setup */
  long total_steps;
  size_t n;
  int nbuf;
  float *buf[MN_OPT_MAX_BUFFERS];
  const char *buf_name[MN_OPT_MAX_BUFFERS]; /* checkpoint tensor suffix */
  mn_reg_segment *segs;
  int nsegs;
} mn_optimizer;

/* Reads optimizer, lr, momentum, nesterov, beta1, beta2, eps, weight_decay, l1, clip_norm,
 * lr_scaling, schedule, warmup_epochs, step_epochs, gamma from [train]. */
int mn_optim_configure(mn_optimizer *opt, mn_cfg_section *train, mn_err *err);
/* Allocates the state for `net`, builds per-layer regularisation and scales the lr. */
int mn_optim_setup(mn_optimizer *opt, const mn_net *net, long global_batch, long steps_per_epoch,
                   long epochs, mn_err *err);
void mn_optim_free(mn_optimizer *opt);
/* The learning rate used for the update at global step `step` (0-based). */
double mn_optim_lr(const mn_optimizer *opt, long step);
/* Applies one update with the averaged `grads` (read only) and zeroes `zero`, the buffer the
 * next backward accumulates into, in the same pass over memory (instead of a separate
 * memset); `zero` is NULL when the next backward replaces the gradients instead
 * (mn_pass.fresh_grads). The two may be the same buffer; they differ when the gradients
 * were averaged into a buffer shared by the ranks of a node (mpi/node_reduce.h). Returns
 * the global gradient norm before clipping (NaN when clipping is off: the norm is then not
 * computed). */
double mn_optim_step(mn_optimizer *opt, float *params, const float *grads, float *zero, long step);

#endif
