/* test_optim.c: every optimizer, regulariser and schedule against hand-computed values on the
 * quadratic f(p) = sum_i a_i p_i^2 / 2 (gradient a_i p_i), a few steps each. The reference
 * numbers in the comments were worked out by hand from the update formulas (PyTorch's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "optim.h"

static const float A[4] = {1, 2, 3, 4};

/* A 4-parameter network (dense 1 -> 2: W0, W1, b0, b1) whose parameters we set by hand. */
static mn_net tiny(void) {
  mn_config cfg;
  mn_net net;
  mn_err err;
  mn_config_parse(&cfg, "o.ini", "[layer]\ntype = dense\nunits = 2\n", &err);
  mn_net_create(&net, &cfg, (mn_shape){1, {1}}, 2, MN_LOSS_MSE, 1, &err);
  mn_config_free(&cfg);
  return net;
}

static mn_optimizer make(const char *train_text, long steps_per_epoch, long epochs, mn_net *net) {
  mn_config cfg;
  mn_err err;
  mn_optimizer opt = {0};
  mn_config_parse(&cfg, "o.ini", train_text, &err);
  CHECK(mn_optim_configure(&opt, mn_config_section(&cfg, "train"), &err) == 0, "%s", err.msg);
  CHECK(mn_optim_setup(&opt, net, 256, steps_per_epoch, epochs, &err) == 0, "%s", err.msg);
  mn_config_free(&cfg);
  return opt;
}

/* Runs `steps` updates from p = (1, 1, 1, 1) and returns the parameters. */
static void run(const char *train_text, int steps, float *p_out) {
  mn_net net = tiny();
  mn_optimizer opt = make(train_text, 100, 1, &net);
  float g[4];
  for (int i = 0; i < 4; i++) net.params[i] = 1.0f;
  for (int s = 0; s < steps; s++) {
    for (int i = 0; i < 4; i++) g[i] = A[i] * net.params[i];
    mn_optim_step(&opt, net.params, g, g, s);
  }
  memcpy(p_out, net.params, sizeof(float) * 4);
  mn_optim_free(&opt);
  mn_net_destroy(&net);
}

static void expect(const char *what, const float *got, const double *want) {
  for (int i = 0; i < 4; i++)
    CHECK(fabs(got[i] - want[i]) <= 1e-6 * fmax(1.0, fabs(want[i])), "%s: p[%d] = %.9g, want %.9g",
          what, i, got[i], want[i]);
}

static void test_sgd_family(void) {
  float p[4];
  /* plain SGD, lr 0.1: p <- p (1 - 0.1 a); two steps: (1 - 0.1 a)^2 */
  run("[train]\nlr = 0.1\nmomentum = 0\n", 2, p);
  expect("sgd", p, (double[]){0.81, 0.64, 0.49, 0.36});
  /* momentum 0.5, lr 0.1, a = 1: step 1: v = 1, p = 0.9; step 2: g = 0.9, v = 0.5 + 0.9 = 1.4,
   * p = 0.9 - 0.14 = 0.76. a = 2: v = 2, p = 0.8; g = 1.6, v = 2.6, p = 0.54.
   * a = 3: v = 3, p = 0.7; g = 2.1, v = 3.6, p = 0.34. a = 4: v = 4, p = 0.6; g = 2.4, v = 4.4,
   * p = 0.16 */
  run("[train]\nlr = 0.1\nmomentum = 0.5\n", 2, p);
  expect("momentum", p, (double[]){0.76, 0.54, 0.34, 0.16});
  /* Nesterov: update = g + mu v. a = 1: v = 1, p = 1 - 0.1 (1 + 0.5) = 0.85; g = 0.85,
   * v = 0.5 + 0.85 = 1.35, p = 0.85 - 0.1 (0.85 + 0.675) = 0.6975.
   * a = 2: v = 2, p = 0.7; g = 1.4, v = 2.4, p = 0.7 - 0.1 (1.4 + 1.2) = 0.44.
   * a = 3: v = 3, p = 0.55; g = 1.65, v = 3.15, p = 0.55 - 0.1 (1.65 + 1.575) = 0.2275.
   * a = 4: v = 4, p = 0.4; g = 1.6, v = 3.6, p = 0.4 - 0.1 (1.6 + 1.8) = 0.06 */
  run("[train]\nlr = 0.1\nmomentum = 0.5\nnesterov = true\n", 2, p);
  expect("nesterov", p, (double[]){0.6975, 0.44, 0.2275, 0.06});
  /* L2 0.5 adds 0.5 p to the gradient: plain SGD p <- p (1 - 0.1 (a + 0.5)), one step */
  run("[train]\nlr = 0.1\nmomentum = 0\nweight_decay = 0.5\n", 1, p);
  expect("sgd + L2", p, (double[]){0.85, 0.75, 0.65, 0.55});
  /* L1 0.5 adds 0.5 sign(p): p <- 1 - 0.1 (a + 0.5), the same for p = 1 */
  run("[train]\nlr = 0.1\nmomentum = 0\nl1 = 0.5\n", 1, p);
  expect("sgd + L1", p, (double[]){0.85, 0.75, 0.65, 0.55});
  /* clip_norm 1: g = (1, 2, 3, 4) has norm sqrt(30); clipped g = a / sqrt(30) */
  run("[train]\nlr = 0.1\nmomentum = 0\nclip_norm = 1\n", 1, p);
  double k = 0.1 / sqrt(30.0);
  expect("sgd + clip", p, (double[]){1 - k, 1 - 2 * k, 1 - 3 * k, 1 - 4 * k});
}

static void test_adam_family(void) {
  float p[4];
  /* Adam's first step moves every parameter by lr * g / (|g| + eps) ~= lr, whatever a is */
  run("[train]\noptimizer = adam\nlr = 0.01\n", 1, p);
  expect("adam step 1", p, (double[]){0.99, 0.99, 0.99, 0.99});
  /* step 2 by the formula: m = 0.9*0.1*g1 ... worked in double here */
  run("[train]\noptimizer = adam\nlr = 0.01\n", 2, p);
  double want[4];
  for (int i = 0; i < 4; i++) {
    double g1 = A[i], p1 = 1.0 - 0.01 * g1 / (fabs(g1) + 1e-8), g2 = A[i] * p1;
    double m = 0.9 * 0.1 * g1 + 0.1 * g2, v = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2;
    double mh = m / (1 - 0.81), vh = v / (1 - 0.999 * 0.999);
    want[i] = p1 - 0.01 * mh / (sqrt(vh) + 1e-8);
  }
  expect("adam step 2", p, want);
  /* AdamW decays the parameter before the Adam step: p = 1 (1 - lr wd) - lr ~= 0.99 - 0.001 */
  run("[train]\noptimizer = adamw\nlr = 0.01\nweight_decay = 0.1\n", 1, p);
  expect("adamw", p, (double[]){0.989, 0.989, 0.989, 0.989});
  /* Adam with L2 adds wd p to the gradient instead: the first step is still ~lr */
  run("[train]\noptimizer = adam\nlr = 0.01\nweight_decay = 0.1\n", 1, p);
  expect("adam + L2", p, (double[]){0.99, 0.99, 0.99, 0.99});
}

static void test_schedules(void) {
  mn_net net = tiny();
  /* 10 steps per epoch, 10 epochs = 100 steps */
  mn_optimizer c = make("[train]\nlr = 0.2\n", 10, 10, &net);
  CHECK(mn_optim_lr(&c, 0) == 0.2 && mn_optim_lr(&c, 99) == 0.2, "constant");
  mn_optim_free(&c);
  mn_optimizer s =
      make("[train]\nlr = 0.2\nschedule = step\nstep_epochs = 3\ngamma = 0.5\n", 10, 10, &net);
  /* epochs 0-2: 0.2, 3-5: 0.1, 6-8: 0.05, 9: 0.025 */
  CHECK(fabs(mn_optim_lr(&s, 29) - 0.2) < 1e-12 && fabs(mn_optim_lr(&s, 30) - 0.1) < 1e-12 &&
            fabs(mn_optim_lr(&s, 65) - 0.05) < 1e-12 && fabs(mn_optim_lr(&s, 95) - 0.025) < 1e-12,
        "step schedule");
  mn_optim_free(&s);
  mn_optimizer w = make("[train]\nlr = 0.2\nschedule = cosine\nwarmup_epochs = 2\n", 10, 10, &net);
  /* warm-up over 20 steps: step 0 -> 0.2/20, step 9 -> 0.1; then cosine over 80 steps:
   * step 20 -> 0.2, step 60 (half way) -> 0.1, step 100 -> 0 */
  CHECK(fabs(mn_optim_lr(&w, 0) - 0.01) < 1e-12 && fabs(mn_optim_lr(&w, 9) - 0.1) < 1e-12,
        "warm-up: %g %g", mn_optim_lr(&w, 0), mn_optim_lr(&w, 9));
  CHECK(fabs(mn_optim_lr(&w, 20) - 0.2) < 1e-12 && fabs(mn_optim_lr(&w, 60) - 0.1) < 1e-12 &&
            mn_optim_lr(&w, 99) < 0.001,
        "cosine: %g %g %g", mn_optim_lr(&w, 20), mn_optim_lr(&w, 60), mn_optim_lr(&w, 99));
  mn_optim_free(&w);
  /* linear scaling: lr is per 256 samples; make() sets up for a global batch of 256 */
  mn_optimizer l = make("[train]\nlr = 0.1\nlr_scaling = linear\n", 10, 1, &net);
  CHECK(fabs(l.lr - 0.1) < 1e-12, "scaled lr at batch 256: %g", l.lr);
  mn_optim_free(&l);
  mn_config cfg;
  mn_err err;
  mn_optimizer big = {0};
  mn_config_parse(&cfg, "o.ini", "[train]\nlr = 0.1\nlr_scaling = linear\n", &err);
  mn_optim_configure(&big, mn_config_section(&cfg, "train"), &err);
  mn_optim_setup(&big, &net, 1024, 10, 1, &err);
  CHECK(fabs(big.lr - 0.4) < 1e-12, "scaled lr at batch 1024: %g", big.lr);
  mn_optim_free(&big);
  mn_config_free(&cfg);
  mn_net_destroy(&net);
}

static void test_per_layer_regularisation(void) {
  mn_config cfg;
  mn_net net;
  mn_err err;
  mn_config_parse(&cfg, "o.ini",
                  "[train]\nweight_decay = 0.1\n[layer]\ntype = dense\nunits = 2\n"
                  "weight_decay = 0\n[layer]\ntype = dense\nunits = 1\nl1 = 0.2\n",
                  &err);
  mn_net_create(&net, &cfg, (mn_shape){1, {1}}, 1, MN_LOSS_MSE, 1, &err);
  mn_optimizer opt = {0};
  mn_optim_configure(&opt, mn_config_section(&cfg, "train"), &err);
  mn_optim_setup(&opt, &net, 1, 1, 1, &err);
  CHECK(opt.nsegs == 2, "segments %d", opt.nsegs);
  const mn_reg_segment *first = &opt.segs[0], *second = &opt.segs[1];
  CHECK(first->l2 == 0.0f && first->l1 == 0.0f, "layer 1 overrides weight decay to 0");
  CHECK(fabsf(second->l2 - 0.1f) < 1e-7f && fabsf(second->l1 - 0.2f) < 1e-7f,
        "layer 2: global L2 0.1 and its own L1 0.2");
  mn_optim_free(&opt);
  mn_net_destroy(&net);
  mn_config_free(&cfg);
}

int main(void) {
  test_sgd_family();
  test_adam_family();
  test_schedules();
  test_per_layer_regularisation();
  return check_report("test_optim");
}
