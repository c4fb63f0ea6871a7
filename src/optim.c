/* optim.c: SGD (momentum, Nesterov), Adam, AdamW; L2/L1; clipping; LR schedules.
 * The update formulas are PyTorch's, so results can be compared with torch.optim. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

#include "clones.h"

const char *const mn_optimizer_names[] = {"sgd", "adam", "adamw", NULL};
const char *const mn_schedule_names[] = {"constant", "step", "cosine", NULL};

int mn_optim_configure(mn_optimizer *opt, mn_cfg_section *train, mn_err *err) {
  static const char *const scaling[] = {"none", "linear", NULL};
  int kind, schedule, scale;
  if (mn_cfg_choice(train, "optimizer", mn_optimizer_names, MN_OPT_SGD, &kind, err) != 0 ||
      mn_cfg_double(train, "lr", kind == MN_OPT_SGD ? 0.1 : 1e-3, 0.0, 1e3, &opt->base_lr, err) !=
          0 ||
      mn_cfg_double(train, "momentum", kind == MN_OPT_SGD ? 0.9 : 0.0, 0.0, 0.9999, &opt->momentum,
                    err) != 0 ||
      mn_cfg_bool(train, "nesterov", false, &opt->nesterov, err) != 0 ||
      mn_cfg_double(train, "beta1", 0.9, 0.0, 0.99999, &opt->beta1, err) != 0 ||
      mn_cfg_double(train, "beta2", 0.999, 0.0, 0.9999999, &opt->beta2, err) != 0 ||
      mn_cfg_double(train, "eps", 1e-8, 1e-30, 1.0, &opt->eps, err) != 0 ||
      mn_cfg_double(train, "weight_decay", kind == MN_OPT_ADAMW ? 0.01 : 0.0, 0.0, 1.0,
                    &opt->weight_decay, err) != 0 ||
      mn_cfg_double(train, "l1", 0.0, 0.0, 1.0, &opt->l1, err) != 0 ||
      mn_cfg_double(train, "clip_norm", 0.0, 0.0, 1e9, &opt->clip_norm, err) != 0 ||
      mn_cfg_choice(train, "lr_scaling", scaling, 0, &scale, err) != 0 ||
      mn_cfg_choice(train, "schedule", mn_schedule_names, MN_SCHEDULE_CONSTANT, &schedule, err) !=
          0 ||
      mn_cfg_double(train, "warmup_epochs", 0.0, 0.0, 1e6, &opt->warmup_epochs, err) != 0 ||
      mn_cfg_int(train, "step_epochs", 30, 1, 1000000, &opt->step_epochs, err) != 0 ||
      mn_cfg_double(train, "gamma", 0.1, 0.0, 1.0, &opt->gamma, err) != 0)
    return -1;
  if (opt->nesterov && (kind != MN_OPT_SGD || opt->momentum == 0.0)) {
    char where[700];
    mn_cfg_where(train, mn_cfg_find(train, "nesterov"), where, sizeof where);
    return mn_fail(err, "%s: Nesterov needs optimizer = sgd with momentum > 0", where);
  }
  opt->kind = (mn_optimizer_kind)kind;
  opt->schedule = (mn_schedule)schedule;
  opt->linear_scaling = scale == 1;
  opt->lr = opt->base_lr;
  return 0;
}

int mn_optim_setup(mn_optimizer *opt, const mn_net *net, long global_batch, long steps_per_epoch,
                   long epochs, mn_err *err) {
  opt->n = net->nparams;
  opt->steps_per_epoch = steps_per_epoch;
  opt->total_steps = steps_per_epoch * epochs;
  if (opt->linear_scaling) opt->lr = opt->base_lr * (double)global_batch / 256.0;
  opt->nbuf = 0;
  if (opt->kind == MN_OPT_SGD && opt->momentum > 0.0) {
    opt->buf_name[opt->nbuf++] = "momentum";
  } else if (opt->kind != MN_OPT_SGD) {
    opt->buf_name[opt->nbuf++] = "adam_m";
    opt->buf_name[opt->nbuf++] = "adam_v";
  }
  for (int i = 0; i < opt->nbuf; i++) {
    opt->buf[i] = mn_alloc_params(opt->n, sizeof(float), "optimizer state", err);
    if (!opt->buf[i]) return -1;
  }
  opt->segs = mn_alloc((size_t)net->nlayers, sizeof(mn_reg_segment), "optimizer", err);
  if (!opt->segs) return -1;
  opt->nsegs = net->nlayers;
  for (int i = 0; i < net->nlayers; i++) {
    const mn_layer *l = &net->layers[i];
    opt->segs[i] = (mn_reg_segment){
        .offset = l->param_offset,
        .count = l->nparams,
        .l2 = (float)(l->l2 >= 0.0 ? l->l2 : opt->weight_decay),
        .l1 = (float)(l->l1 >= 0.0 ? l->l1 : opt->l1),
    };
  }
  return 0;
}

void mn_optim_free(mn_optimizer *opt) {
  for (int i = 0; i < MN_OPT_MAX_BUFFERS; i++) {
    mn_free_params(opt->buf[i]);
    opt->buf[i] = NULL;
  }
  free(opt->segs);
  opt->segs = NULL;
}

double mn_optim_lr(const mn_optimizer *opt, long step) {
  long spe = opt->steps_per_epoch > 0 ? opt->steps_per_epoch : 1;
  long warmup = (long)llround(opt->warmup_epochs * (double)spe);
  if (step < warmup) return opt->lr * (double)(step + 1) / (double)warmup;
  switch (opt->schedule) {
  case MN_SCHEDULE_STEP: return opt->lr * pow(opt->gamma, (double)(step / spe / opt->step_epochs));
  case MN_SCHEDULE_COSINE: {
    long span = opt->total_steps - warmup;
    if (span <= 0) return opt->lr;
    double t = (double)(step - warmup) / (double)span;
    return opt->lr * 0.5 * (1.0 + cos(3.141592653589793 * t));
  }
  default: return opt->lr;
  }
}

static double global_norm(const float *g, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += (double)g[i] * g[i];
  return sqrt(sum);
}

/* The gradient the update uses: clipped (c = 1 when not) and regularised (L2, L1); when the
 * layer has no L2 or L1 nothing is added, not even 0 (which could turn -0 into +0). */
static inline float grad_at(const float *g, const float *p, size_t i, float c, bool reg, float l2,
                            float l1) {
  if (!reg) return g[i] * c;
  return g[i] * c + (l2 * p[i] + l1 * (float)((p[i] > 0.0f) - (p[i] < 0.0f)));
}

MN_CLONES
double mn_optim_step(mn_optimizer *opt, float *params, const float *grads, float *zero, long step) {
  const float lr = (float)mn_optim_lr(opt, step);
  /* the norm costs a pass over every gradient: only when clipping needs it */
  double norm = opt->clip_norm > 0.0 ? global_norm(grads, opt->n) : NAN;
  const bool clip = opt->clip_norm > 0.0 && norm > opt->clip_norm;
  const float c = clip ? (float)(opt->clip_norm / (norm + 1e-6)) : 1.0f;
  /* Adam / AdamW with bias correction; t counts from 1 */
  const double t = (double)step + 1.0;
  const float b1 = (float)opt->beta1, b2 = (float)opt->beta2, eps = (float)opt->eps;
  const float c1 = (float)(1.0 / (1.0 - pow(opt->beta1, t)));
  const float c2 = (float)(1.0 / (1.0 - pow(opt->beta2, t)));
  const float mu = (float)opt->momentum;
  const bool sgd = opt->kind == MN_OPT_SGD;
  /* one layer at a time: its L2 and L1 terms (AdamW: decoupled decay of the parameters
   * instead) are added to each gradient as it is read */
  for (int s = 0; s < opt->nsegs; s++) {
    const mn_reg_segment *seg = &opt->segs[s];
    const size_t lo = seg->offset, hi = seg->offset + seg->count;
    const float l2 = opt->kind == MN_OPT_ADAMW ? 0.0f : seg->l2, l1 = seg->l1;
    const bool reg = l2 != 0.0f || l1 != 0.0f;
    float *p = params, *z = zero;
    if (opt->kind == MN_OPT_ADAMW) {
      const float decay = 1.0f - lr * seg->l2;
      for (size_t i = lo; i < hi; i++) p[i] *= decay;
    }
    if (sgd && !opt->buf[0]) {
      for (size_t i = lo; i < hi; i++) {
        const float g = grad_at(grads, p, i, c, reg, l2, l1);
        p[i] -= lr * g;
        if (z) z[i] = 0.0f;
      }
    } else if (sgd) {
      float *v = opt->buf[0];
      for (size_t i = lo; i < hi; i++) {
        const float g = grad_at(grads, p, i, c, reg, l2, l1);
        v[i] = mu * v[i] + g;
        p[i] -= lr * (opt->nesterov ? g + mu * v[i] : v[i]);
        if (z) z[i] = 0.0f;
      }
    } else {
      float *m = opt->buf[0], *v = opt->buf[1];
      for (size_t i = lo; i < hi; i++) {
        const float g = grad_at(grads, p, i, c, reg, l2, l1);
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        p[i] -= lr * (m[i] * c1) / (sqrtf(v[i] * c2) + eps);
        if (z) z[i] = 0.0f;
      }
    }
  }
  return norm;
}
