/* test_gradcheck.c: every layer, activation and loss against central finite differences of
 * the loss, for parameters AND inputs.
 *
 * Each case is a small network (a config text) ending in a loss. The network runs in float;
 * the loss is accumulated in double. Pass: |analytic - numeric| <=
 * 1e-3 * max(|analytic|, |numeric|) + 5e-5 for every entry (see close_enough), which catches
 * a wrong sign, a missing term or a wrong factor anywhere; main() checks that the harness
 * rejects a gradient that is off by 1%.
 * Where the loss is not differentiable between x - eps and x + eps (a ReLU changing side, a
 * max-pool or maxout winner changing) a central difference is meaningless: ReLU flips are
 * detected exactly from the activation pattern, winner changes from the max outputs (see
 * max_linear), and the smooth side's one-sided difference is used; entries with kinks on
 * both sides are skipped, counted, and limited to 5% of a case. Differences are
 * Richardson-extrapolated, so curvature (batch norm, long recurrences) does not pass for an
 * error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "loss.h"
#include "net.h"
#include "rng.h"

enum { B = 4, MAX_IN = 512 };

typedef struct {
  const char *name;
  const char *layers; /* [layer] sections */
  mn_shape in;
  int outputs;
  mn_loss_kind loss;
  bool targets; /* float targets instead of labels */
} gc_case;

typedef struct {
  mn_net net;
  mn_pass pass;
  uint64_t ids[B];
  float x[B * MAX_IN];
  int32_t labels[B];
  float targets[B * 16];
  const gc_case *c;
} problem;

static double loss_of(problem *p, float *grad_out) {
  const float *o = mn_net_forward(&p->net, &p->pass, p->x, B);
  mn_loss_stats st = {0};
  mn_loss_compute(p->net.loss, mn_net_final_act(&p->net), o, p->c->targets ? NULL : p->labels,
                  p->c->targets ? p->targets : NULL, B, p->c->outputs, 1.0f / B, grad_out, &st);
  return st.loss_sum / B;
}

/* Which ReLU-like units are active, as a hash: a change means a kink was crossed. */
static uint64_t relu_pattern(const mn_net *net) {
  uint64_t h = 1469598103934665603ULL;
  for (int l = 0; l < net->nlayers; l++) {
    if ((net->layers[l].act != MN_ACT_RELU && net->layers[l].act != MN_ACT_LEAKY_RELU &&
         net->layers[l].act != MN_ACT_ELU) ||
        net->layers[l].stream_rows > 0) /* not held; its ReLU runs after the next (a max) */
      continue;
    size_t n = (size_t)B * mn_shape_count(net->layers[l].out);
    for (size_t i = 0; i < n; i++) h = (h ^ (net->acts[l][i] > 0.0f)) * 1099511628211ULL;
  }
  return h;
}

/* Outputs of the max operations (maxpool, maxout), which are piecewise linear in their
 * inputs: between two evaluations the winner of a window stayed the same exactly when the
 * second difference of these outputs is zero up to rounding. */
static size_t max_outputs(const problem *p, float *out) {
  size_t n = 0;
  for (int l = 0; l < p->net.nlayers; l++) {
    const char *type = p->net.layers[l].ops->type;
    if (strcmp(type, "maxpool") != 0 && strcmp(type, "maxout") != 0) continue;
    size_t len = (size_t)B * mn_shape_count(p->net.layers[l].out);
    if (out) memcpy(out + n, p->net.acts[l], len * sizeof(float));
    n += len;
  }
  return n;
}

/* Whether the max outputs are linear along base, base + h/2, base + h (no winner change). */
static bool max_linear(const float *base, const float *half, const float *full, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (fabsf(full[i] - 2.0f * half[i] + base[i]) > 1e-5f * (1.0f + fabsf(base[i]))) return false;
  return true;
}

/* One evaluation point: the loss, the ReLU pattern and the max outputs there. */
typedef struct {
  double loss;
  uint64_t relu;
  float *max;
} point;

static void evaluate_at(problem *p, float *v, float keep, float offset, point *pt) {
  *v = keep + offset;
  pt->loss = loss_of(p, NULL);
  pt->relu = relu_pattern(&p->net);
  max_outputs(p, pt->max);
  *v = keep;
}

/* d(loss)/dv from the points v - h, v - h/2, v, v + h/2, v + h. Where both sides are smooth:
 * Richardson extrapolation of the central differences at h and h/2,
 * (4 D(h/2) - D(h)) / 3, truncation error O(h^4). Where a kink (ReLU flip, max winner
 * change) lies on one side only: the one-sided difference of the smooth side, extrapolated
 * the same way (2 D(h/2) - D(h), error O(h^2)); it is the derivative the backward pass takes
 * at v. Returns false when both sides have a kink. */
static bool numeric_grad(problem *p, float *v, float h, double *out) {
  static float mbuf[5][B * 4096];
  const float keep = *v;
  const size_t nm = max_outputs(p, NULL);
  point pt[5]; /* -h, -h/2, 0, +h/2, +h */
  const float offsets[5] = {-h, -h / 2, 0.0f, h / 2, h};
  for (int i = 0; i < 5; i++) {
    pt[i].max = mbuf[i];
    evaluate_at(p, v, keep, offsets[i], &pt[i]);
  }
  const bool up = pt[3].relu == pt[2].relu && pt[4].relu == pt[2].relu &&
                  max_linear(pt[2].max, pt[3].max, pt[4].max, nm);
  const bool down = pt[1].relu == pt[2].relu && pt[0].relu == pt[2].relu &&
                    max_linear(pt[2].max, pt[1].max, pt[0].max, nm);
  if (up && down) {
    const double wide = (pt[4].loss - pt[0].loss) / (2.0 * h);
    const double narrow = (pt[3].loss - pt[1].loss) / (double)h;
    *out = (4.0 * narrow - wide) / 3.0;
  } else if (up || down) {
    const int half = up ? 3 : 1, full = up ? 4 : 0;
    const double sign = up ? 1.0 : -1.0;
    const double wide = sign * (pt[full].loss - pt[2].loss) / h;
    const double narrow = sign * (pt[half].loss - pt[2].loss) / (h / 2);
    *out = 2.0 * narrow - wide;
  } else {
    return false;
  }
  return true;
}

/* 1e-3 relative, above an absolute floor of 5e-5: the float forward pass puts about 1e-5
 * of noise on a central difference and 4e-5 on a one-sided one (a loss of ~1 carries ~1e-7
 * of rounding; divided by the 1e-2 step). The self-test in main() shows that a gradient off
 * by 1% is still caught. */
static bool close_enough(double a, double n) {
  return fabs(a - n) <= 1e-3 * fmax(fabs(a), fabs(n)) + 5e-5;
}

static int build(problem *p, const gc_case *c) {
  mn_config cfg;
  mn_err err;
  memset(p, 0, sizeof *p);
  p->c = c;
  if (mn_config_parse(&cfg, c->name, c->layers, &err) != 0 ||
      mn_net_create(&p->net, &cfg, c->in, c->outputs, c->loss, B, &err) != 0) {
    fprintf(stderr, "%s: build failed: %s\n", c->name, err.msg);
    mn_config_free(&cfg);
    return -1;
  }
  mn_config_free(&cfg);
  mn_net_init_params(&p->net, 7);
  /* move every parameter off its initial value (batch norm's gamma = 1, biases = 0) */
  for (size_t i = 0; i < p->net.nparams; i++)
    p->net.params[i] = 1.3f * p->net.params[i] + 0.2f * (mn_rng_uniform(5, 9, i) - 0.5f);
  size_t in = mn_shape_count(c->in);
  for (size_t i = 0; i < B * in; i++) p->x[i] = 2.0f * mn_rng_uniform(3, 9, i) - 1.0f;
  for (int i = 0; i < B; i++) p->labels[i] = (i * 7 + 1) % c->outputs, p->ids[i] = 100 + i;
  for (int i = 0; i < B * c->outputs; i++) p->targets[i] = mn_rng_uniform(4, 9, (uint64_t)i);
  p->pass = (mn_pass){.training = true, .seed = 11, .step = 3, .sample_ids = p->ids};
  return 0;
}

/* Checks one case; `skew` multiplies the analytic gradient (1 normally; the self-test
 * passes 1.01 and expects failures). Returns the number of mismatching entries. */
static int gradcheck(const gc_case *c, float skew) {
  problem *p = calloc(1, sizeof *p);
  if (build(p, c) != 0) {
    CHECK(0, "cannot build %s", c->name);
    free(p);
    return -1;
  }
  mn_net *net = &p->net;
  const size_t in = mn_shape_count(c->in), nparams = net->nparams;
  float *dx = calloc(B * in, sizeof(float));
  mn_net_zero_grads(net);
  loss_of(p, mn_net_output_grad(net));
  mn_net_backward(net, &p->pass, p->x, B, dx);
  float *analytic = malloc(net->nparams * sizeof(float) + 1);
  memcpy(analytic, net->grads, net->nparams * sizeof(float));
  for (size_t i = 0; i < net->nparams; i++) analytic[i] *= skew;
  for (size_t i = 0; i < B * in; i++) dx[i] *= skew;

  const float eps = 2e-2f;
  int bad = 0, skipped = 0, total = 0;
  double worst = 0.0, numeric;
  for (size_t i = 0; i < net->nparams + B * in; i++) {
    bool is_param = i < net->nparams;
    float *v = is_param ? &net->params[i] : &p->x[i - net->nparams];
    double a = is_param ? analytic[i] : dx[i - net->nparams];
    total++;
    if (!numeric_grad(p, v, eps, &numeric)) {
      skipped++;
      continue;
    }
    worst = fmax(worst, fabs(a - numeric));
    if (!close_enough(a, numeric) && bad++ < 3 && skew == 1.0f)
      CHECK(0, "%s: %s %zu: analytic %.6g numeric %.6g", c->name, is_param ? "param" : "input",
            is_param ? i : i - net->nparams, a, numeric);
  }
  free(analytic);
  free(dx);
  mn_net_destroy(net);
  free(p);
  if (skew != 1.0f) return bad;
  CHECK(bad == 0, "%s: %d mismatches", c->name, bad);
  CHECK(skipped * 20 <= total, "%s: %d of %d entries skipped at kinks", c->name, skipped, total);
  printf("  %-34s %5zu params %4zu inputs  max |analytic - numeric| %.1e  skipped %d\n", c->name,
         nparams, B * in, worst, skipped);
  return bad;
}

#define DENSE(units, act) "[layer]\ntype = dense\nunits = " #units "\nactivation = " act "\n"
#define FLAT(n) ((mn_shape){1, {n}})
#define IMG(c, h, w) ((mn_shape){3, {c, h, w}})
#define SEQ(t, f) ((mn_shape){2, {t, f}})

int main(void) {
  static char texts[64][512];
  gc_case cases[128];
  int n = 0;
  /* every activation in a hidden layer, under every loss and output activation */
  const char *acts[] = {"none", "sigmoid", "tanh", "relu", "softmax", "leaky_relu", "elu"};
  for (int i = 0; i < 7; i++) {
    char *t = texts[i];
    snprintf(t, 512, "[layer]\ntype = dense\nunits = 6\nactivation = %s\n", acts[i]);
    struct {
      const char *out, *suffix;
      mn_loss_kind loss;
      bool targets;
    } heads[] = {
        {"none", "ce", MN_LOSS_CROSS_ENTROPY, false},
        {"softmax", "ce", MN_LOSS_CROSS_ENTROPY, false},
        {"sigmoid", "mse", MN_LOSS_MSE, false},
        {"tanh", "mse-targets", MN_LOSS_MSE, true},
        {"none", "bce-targets", MN_LOSS_BCE, true},
        {"sigmoid", "bce", MN_LOSS_BCE, false},
    };
    for (int h = 0; h < 6; h++) {
      char *name = texts[32 + (i * 6 + h) % 32];
      (void)name;
      static char names[64][64], full[64][512];
      int k = i * 6 + h;
      snprintf(names[k], 64, "dense+%s -> %s/%s", acts[i], heads[h].out, heads[h].suffix);
      snprintf(full[k], 512, "%s[layer]\ntype = dense\nunits = 3\nactivation = %s\n", t,
               heads[h].out);
      cases[n++] = (gc_case){names[k], full[k], FLAT(5), 3, heads[h].loss, heads[h].targets};
    }
  }
  const gc_case layer_cases[] = {
      {"conv2d 3x3 valid +tanh",
       "[layer]\ntype = conv2d\nfilters = 3\nsize = 3\nactivation = tanh\n"
       "[layer]\ntype = flatten\n" DENSE(3, "none"),
       IMG(2, 6, 5), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"conv2d 3x2 stride 2 same +elu",
       "[layer]\ntype = conv2d\nfilters = 2\nsize = 3,2\nstride = 2\npadding = same\n"
       "activation = elu\n" DENSE(3, "none"),
       IMG(2, 7, 6), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"conv2d 5x5 padding 1 stride 2",
       "[layer]\ntype = conv2d\nfilters = 2\nsize = 5\npadding = 1\nstride = 2\n" DENSE(3, "none"),
       IMG(1, 8, 8), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"conv2d -> maxpool 2",
       "[layer]\ntype = conv2d\nfilters = 2\nsize = 3\npadding = same\n"
       "[layer]\ntype = maxpool\nsize = 2\n" DENSE(3, "none"),
       IMG(2, 6, 6), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"conv2d +relu -> maxpool 2 (ReLU after the pool, dx over the conv's output)",
       "[layer]\ntype = conv2d\nfilters = 2\nsize = 3\npadding = same\nactivation = relu\n"
       "[layer]\ntype = maxpool\nsize = 2\n" DENSE(3, "none"),
       IMG(2, 6, 6), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"reshape -> conv2d +relu -> maxpool 2",
       "[layer]\ntype = reshape\nshape = 1,6,6\n"
       "[layer]\ntype = conv2d\nfilters = 2\nsize = 3\npadding = same\nactivation = relu\n"
       "[layer]\ntype = maxpool\nsize = 2\n" DENSE(3, "none"),
       FLAT(36), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"maxpool 3 stride 1 (overlapping)",
       "[layer]\ntype = maxpool\nsize = 3\nstride = 1\n" DENSE(3, "none"), IMG(2, 5, 5), 3,
       MN_LOSS_CROSS_ENTROPY, false},
      {"conv2d -> avgpool 2 stride 1",
       "[layer]\ntype = conv2d\nfilters = 2\nsize = 2\n[layer]\ntype = avgpool\nsize = 2\n"
       "stride = 1\n" DENSE(3, "none"),
       IMG(2, 5, 5), 3, MN_LOSS_MSE, false},
      {"conv2d bias = false -> batchnorm -> global_avgpool",
       "[layer]\ntype = conv2d\nfilters = 3\nsize = 3\npadding = same\nbias = false\n"
       "[layer]\ntype = batchnorm\nactivation = tanh\n[layer]\ntype = global_avgpool\n" DENSE(
           3, "none"),
       IMG(2, 5, 4), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"global_avgpool on the input", "[layer]\ntype = global_avgpool\n" DENSE(3, "none"),
       IMG(4, 3, 3), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"dense -> batchnorm (train) +relu",
       DENSE(6, "none") "[layer]\ntype = batchnorm\nactivation = relu\n" DENSE(3, "none"), FLAT(5),
       3, MN_LOSS_CROSS_ENTROPY, false},
      {"conv2d -> batchnorm (C,H,W)",
       "[layer]\ntype = conv2d\nfilters = 3\nsize = 3\n[layer]\ntype = batchnorm\n"
       "activation = tanh\n" DENSE(3, "none"),
       IMG(2, 5, 5), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"batchnorm on the input", "[layer]\ntype = batchnorm\n" DENSE(3, "softmax"), FLAT(5), 3,
       MN_LOSS_CROSS_ENTROPY, false},
      {"dense -> dropout 0.3 -> dense",
       DENSE(8, "tanh") "[layer]\ntype = dropout\nrate = 0.3\n" DENSE(3, "none"), FLAT(5), 3,
       MN_LOSS_CROSS_ENTROPY, false},
      {"dense -> maxout 3 -> dense",
       DENSE(6, "none") "[layer]\ntype = maxout\npieces = 3\n" DENSE(3, "none"), FLAT(5), 3,
       MN_LOSS_CROSS_ENTROPY, false},
      {"dense +relu -> maxout 3 -> dense",
       DENSE(6, "relu") "[layer]\ntype = maxout\npieces = 3\n" DENSE(3, "none"), FLAT(5), 3,
       MN_LOSS_CROSS_ENTROPY, false},
      {"conv2d -> maxout 2 over channels",
       "[layer]\ntype = conv2d\nfilters = 4\nsize = 2\n[layer]\ntype = maxout\npieces = 2\n" DENSE(
           3, "none"),
       IMG(1, 3, 3), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"reshape -> rnn (last state)",
       "[layer]\ntype = reshape\nshape = 4,3\n[layer]\ntype = rnn\nunits = 5\n" DENSE(3, "none"),
       FLAT(12), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"rnn (sequences) -> flatten",
       "[layer]\ntype = rnn\nunits = 4\nreturn_sequences = true\n[layer]\ntype = flatten\n" DENSE(
           3, "none"),
       SEQ(3, 2), 3, MN_LOSS_MSE, true},
      {"lstm over 5 steps (last state)", "[layer]\ntype = lstm\nunits = 4\n" DENSE(3, "none"),
       SEQ(5, 3), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"lstm (sequences) -> lstm",
       "[layer]\ntype = lstm\nunits = 3\nreturn_sequences = true\n[layer]\ntype = lstm\n"
       "units = 3\n",
       SEQ(4, 2), 3, MN_LOSS_MSE, true},
      {"graph: one output into two branches merged by add (and read by the add too)",
       "[layer]\nname = stem\ntype = dense\nunits = 6\nactivation = tanh\n"
       "[layer]\nname = b1\ntype = dense\nunits = 6\nactivation = relu\n"
       "[layer]\nname = b2\ntype = dense\nunits = 6\ninputs = stem\n"
       "[layer]\ntype = add\ninputs = b1, b2, stem\nactivation = tanh\n" DENSE(3, "none"),
       FLAT(5), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"graph: the input read by two layers, concat of vectors",
       "[layer]\nname = a\ntype = dense\nunits = 4\nactivation = elu\n"
       "[layer]\nname = b\ntype = dense\nunits = 3\ninputs = input\nactivation = sigmoid\n"
       "[layer]\ntype = concat\ninputs = b, a\n" DENSE(3, "none"),
       FLAT(5), 3, MN_LOSS_MSE, true},
      {"graph: concat of images along channels, a max pool after a shared ReLU output",
       "[layer]\nname = a\ntype = conv2d\nfilters = 2\nsize = 3\npadding = same\n"
       "activation = relu\n"
       "[layer]\nname = pa\ntype = maxpool\nsize = 2\n"
       "[layer]\nname = b\ntype = conv2d\nfilters = 3\nsize = 2\nstride = 2\ninputs = a\n"
       "[layer]\ntype = concat\ninputs = pa, b\nactivation = tanh\n" DENSE(3, "none"),
       IMG(2, 6, 6), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"graph: a residual block (conv, batchnorm, relu, conv, batchnorm, add the input, relu)",
       "[layer]\ntype = conv2d\nfilters = 2\nsize = 3\npadding = same\nbias = false\n"
       "[layer]\ntype = batchnorm\nactivation = relu\n"
       "[layer]\ntype = conv2d\nfilters = 2\nsize = 3\npadding = same\nbias = false\n"
       "[layer]\nname = bn2\ntype = batchnorm\n"
       "[layer]\ntype = add\ninputs = input, bn2\nactivation = relu\n"
       "[layer]\ntype = global_avgpool\n" DENSE(3, "none"),
       IMG(2, 4, 4), 3, MN_LOSS_CROSS_ENTROPY, false},
      {"reshape image rows -> lstm",
       "[layer]\ntype = reshape\nshape = 4,4\n[layer]\ntype = lstm\nunits = 3\n" DENSE(3, "none"),
       IMG(1, 4, 4), 3, MN_LOSS_CROSS_ENTROPY, false},
  };
  for (size_t i = 0; i < sizeof layer_cases / sizeof layer_cases[0]; i++)
    cases[n++] = layer_cases[i];
  for (int i = 0; i < n; i++) gradcheck(&cases[i], 1.0f);
  /* The harness itself must be able to fail: gradients off by 1% are caught in most entries
   * of a convolution, a batch norm and an LSTM case. */
  for (int i = 0; i < n; i++)
    if (strstr(cases[i].name, "conv2d 3x3") || strstr(cases[i].name, "(C,H,W)") ||
        strstr(cases[i].name, "lstm over")) {
      int caught = gradcheck(&cases[i], 1.01f);
      printf("  self-test: %s with the gradient off by 1%%: %d entries rejected\n", cases[i].name,
             caught);
      CHECK(caught > 20, "%s: a 1%% error was caught in only %d entries", cases[i].name, caught);
    }
  return check_report("test_gradcheck");
}
