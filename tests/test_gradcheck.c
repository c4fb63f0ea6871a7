/* test_gradcheck.c: backward of dense + every activation + every loss against central
 * finite differences of the loss, for parameters AND inputs.
 *
 * The network and loss run in float; the loss is accumulated in double, and the finite
 * difference uses eps = 1e-2 (float noise stays ~1e-6). Where a ReLU flips between x - eps
 * and x + eps the finite difference is meaningless; those entries are detected from the
 * activation pattern and skipped (at most 2 per case, or the test fails).
 * Pass: |analytic - numeric| <= 1e-3 * max(|analytic|, |numeric|) + 1e-5 for every entry,
 * which catches a wrong sign, a missing term or a wrong factor of 2 anywhere. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "loss.h"
#include "net.h"
#include "rng.h"

enum { B = 4, IN = 5, HID = 6, OUT = 3 };

typedef struct {
  mn_net net;
  float x[B * IN];
  int32_t labels[B];
  float targets[B * OUT];
  bool use_targets;
} problem;

static double loss_of(problem *p, float *grad_out) {
  const float *o = mn_net_forward(&p->net, p->x, B, true);
  mn_loss_stats st = {0};
  mn_loss_compute(p->net.loss, mn_net_final_act(&p->net), o, p->use_targets ? NULL : p->labels,
                  p->use_targets ? p->targets : NULL, B, OUT, 1.0f / B, grad_out, &st);
  return st.loss_sum / B;
}

/* Which ReLU units are active, as a hash: a change means a kink was crossed. */
static uint64_t relu_pattern(const mn_net *net) {
  uint64_t h = 1469598103934665603ULL;
  for (int l = 0; l < net->nlayers; l++) {
    if (net->layers[l].act != MN_ACT_RELU)
      continue;
    size_t n = (size_t)B * mn_shape_count(net->layers[l].out);
    for (size_t i = 0; i < n; i++)
      h = (h ^ (net->acts[l][i] > 0.0f)) * 1099511628211ULL;
  }
  return h;
}

/* Central difference of the loss along one value; false if a ReLU kink lies in between. */
static bool numeric_grad(problem *p, float *v, float eps, double *out) {
  float keep = *v;
  loss_of(p, NULL);
  uint64_t base = relu_pattern(&p->net);
  *v = keep + eps;
  double up = loss_of(p, NULL);
  uint64_t pu = relu_pattern(&p->net);
  *v = keep - eps;
  double down = loss_of(p, NULL);
  uint64_t pd = relu_pattern(&p->net);
  *v = keep;
  *out = (up - down) / (2.0 * eps);
  return pu == base && pd == base;
}

static bool close_enough(double a, double n) {
  return fabs(a - n) <= 1e-3 * fmax(fabs(a), fabs(n)) + 1e-5;
}

/* Builds a two-layer net: dense(HID, act1) -> dense(OUT, act2) with the given loss. */
static int build(problem *p, const char *act1, const char *act2, mn_loss_kind loss) {
  char text[512];
  snprintf(text, sizeof text,
           "[layer]\ntype = dense\nunits = %d\nactivation = %s\n"
           "[layer]\ntype = dense\nunits = %d\nactivation = %s\n",
           HID, act1, OUT, act2);
  mn_config cfg;
  mn_err err;
  if (mn_config_parse(&cfg, "gradcheck.ini", text, &err) != 0 ||
      mn_net_create(&p->net, &cfg, (mn_shape){1, {IN}}, OUT, loss, B, &err) != 0) {
    fprintf(stderr, "build failed: %s\n", err.msg);
    return -1;
  }
  mn_config_free(&cfg);
  mn_net_init_params(&p->net, 7);
  /* bias away from zero so ReLU kinks are far from every pre-activation */
  for (size_t i = 0; i < p->net.nparams; i++)
    p->net.params[i] *= 1.5f;
  for (int i = 0; i < B * IN; i++)
    p->x[i] = 2.0f * mn_rng_uniform(3, 9, (uint64_t)i) - 1.0f;
  for (int i = 0; i < B; i++)
    p->labels[i] = i % OUT;
  for (int i = 0; i < B * OUT; i++)
    p->targets[i] = mn_rng_uniform(4, 9, (uint64_t)i) - 0.5f;
  return 0;
}

static void gradcheck(const char *act1, const char *act2, mn_loss_kind loss, bool targets) {
  problem p;
  memset(&p, 0, sizeof p);
  p.use_targets = targets;
  if (build(&p, act1, act2, loss) != 0) {
    CHECK(0, "cannot build %s/%s", act1, act2);
    return;
  }
  mn_net *net = &p.net;
  /* analytic: parameter gradients, and the input gradient by a first layer with dx */
  mn_net_zero_grads(net);
  loss_of(&p, mn_net_output_grad(net));
  float *dx = calloc(B * IN, sizeof(float));
  float *dy0 = calloc((size_t)B * HID, sizeof(float));
  /* run the backward by hand so the first layer also produces dx */
  mn_layer *l1 = &net->layers[1], *l0 = &net->layers[0];
  float *dout = mn_net_output_grad(net);
  l1->ops->backward(l1, net->acts[0], net->acts[1], dout, dy0, B);
  l0->ops->backward(l0, p.x, net->acts[0], dy0, dx, B);
  float *analytic = malloc(net->nparams * sizeof(float));
  memcpy(analytic, net->grads, net->nparams * sizeof(float));

  const float eps = 1e-2f;
  int bad = 0, skipped = 0;
  double worst = 0.0, numeric;
  for (size_t i = 0; i < net->nparams; i++) {
    if (!numeric_grad(&p, &net->params[i], eps, &numeric)) {
      skipped++;
      continue;
    }
    worst = fmax(worst, fabs(analytic[i] - numeric));
    if (!close_enough(analytic[i], numeric) && bad++ < 3)
      CHECK(0, "%s/%s/%s param %zu: analytic %.6g numeric %.6g", act1, act2, mn_loss_names[loss], i,
            analytic[i], numeric);
  }
  for (int i = 0; i < B * IN; i++) {
    if (!numeric_grad(&p, &p.x[i], eps, &numeric)) {
      skipped++;
      continue;
    }
    worst = fmax(worst, fabs(dx[i] - numeric));
    if (!close_enough(dx[i], numeric) && bad++ < 6)
      CHECK(0, "%s/%s/%s input %d: analytic %.6g numeric %.6g", act1, act2, mn_loss_names[loss], i,
            dx[i], numeric);
  }
  CHECK(bad == 0, "%s/%s/%s%s: %d mismatches", act1, act2, mn_loss_names[loss],
        targets ? "(targets)" : "", bad);
  CHECK(skipped <= 2, "%s/%s: %d entries skipped at ReLU kinks", act1, act2, skipped);
  printf("  %-8s %-8s %-14s max |analytic - numeric| = %.2e (%d skipped at kinks)\n", act1, act2,
         mn_loss_names[loss], worst, skipped);
  free(analytic), free(dx), free(dy0);
  mn_net_destroy(net);
}

int main(void) {
  const char *hidden[] = {"none", "sigmoid", "tanh", "relu", "softmax"};
  for (int i = 0; i < 5; i++) {
    gradcheck(hidden[i], "none", MN_LOSS_CROSS_ENTROPY, false);
    gradcheck(hidden[i], "softmax", MN_LOSS_CROSS_ENTROPY, false);
    gradcheck(hidden[i], "sigmoid", MN_LOSS_MSE, false);
    gradcheck(hidden[i], "none", MN_LOSS_MSE, true);
    gradcheck(hidden[i], "tanh", MN_LOSS_MSE, true);
  }
  /* A check that the harness itself can fail: a wrong-sign gradient must be caught. */
  CHECK(!close_enough(0.25, -0.25) && !close_enough(0.5, 0.25), "tolerance too loose");
  return check_report("test_gradcheck");
}
