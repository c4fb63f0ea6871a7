/* optim.c: SGD with momentum, weight decay and constant / step / cosine schedules. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

const char *const mn_schedule_names[] = {"constant", "step", "cosine", NULL};

int mn_sgd_configure(mn_sgd *opt, mn_cfg_section *train, mn_err *err) {
  int schedule;
  if (mn_cfg_double(train, "lr", 0.1, 0.0, 1e3, &opt->lr, err) != 0 ||
      mn_cfg_double(train, "momentum", 0.9, 0.0, 0.9999, &opt->momentum, err) != 0 ||
      mn_cfg_double(train, "weight_decay", 0.0, 0.0, 1.0, &opt->weight_decay, err) != 0 ||
      mn_cfg_choice(train, "schedule", mn_schedule_names, MN_SCHEDULE_CONSTANT, &schedule, err) !=
          0 ||
      mn_cfg_double(train, "warmup_epochs", 0.0, 0.0, 1e6, &opt->warmup_epochs, err) != 0 ||
      mn_cfg_int(train, "step_epochs", 30, 1, 1000000, &opt->step_epochs, err) != 0 ||
      mn_cfg_double(train, "gamma", 0.1, 0.0, 1.0, &opt->gamma, err) != 0)
    return -1;
  opt->schedule = (mn_schedule)schedule;
  return 0;
}

int mn_sgd_alloc(mn_sgd *opt, size_t nparams, mn_err *err) {
  opt->n = nparams;
  opt->velocity = mn_alloc(nparams, sizeof(float), "momentum buffer", err);
  return opt->velocity ? 0 : -1;
}

void mn_sgd_free(mn_sgd *opt) {
  free(opt->velocity);
  opt->velocity = NULL;
}

double mn_sgd_lr(const mn_sgd *opt, long step) {
  long spe = opt->steps_per_epoch > 0 ? opt->steps_per_epoch : 1;
  long warmup = (long)llround(opt->warmup_epochs * (double)spe);
  if (step < warmup)
    return opt->lr * (double)(step + 1) / (double)warmup;
  switch (opt->schedule) {
  case MN_SCHEDULE_STEP: return opt->lr * pow(opt->gamma, (double)(step / spe / opt->step_epochs));
  case MN_SCHEDULE_COSINE: {
    long span = opt->total_steps - warmup;
    if (span <= 0)
      return opt->lr;
    double t = (double)(step - warmup) / (double)span;
    return opt->lr * 0.5 * (1.0 + cos(3.141592653589793 * t));
  }
  default: return opt->lr;
  }
}

void mn_sgd_step(mn_sgd *opt, float *params, const float *grads, long step) {
  const float lr = (float)mn_sgd_lr(opt, step);
  const float mu = (float)opt->momentum, wd = (float)opt->weight_decay;
  float *v = opt->velocity;
  for (size_t i = 0; i < opt->n; i++) {
    float g = grads[i] + wd * params[i];
    v[i] = mu * v[i] + g;
    params[i] -= lr * v[i];
  }
}
