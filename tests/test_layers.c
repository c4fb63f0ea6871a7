/* test_layers.c: layer behaviour that finite differences cannot show.
 * - max pooling with ties sends the whole gradient to the first maximum of each window;
 * - dropout: masks keep about 1 - rate, scale by 1/(1 - rate), depend on the sample's dataset
 *   row and the step but not on its position in the batch, and vanish in evaluation;
 * - batch norm: evaluation uses the running statistics, which training updates;
 * - config errors name the layer and both shapes (kernel larger than the input, a shape that
 *   does not fit, a reshape of the wrong size, a recurrent layer on images);
 * - the network's plan (ReLU after max pooling, dx over dead outputs, streamed pairs), and
 *   streamed pairs compute the same bits as whole batches;
 * - weight initialisation: each scheme's variance and bounds, He's scale with a leaky ReLU's
 *   slope, what `auto` picks for each activation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gemm.h"
#include "net.h"

static int build(mn_net *net, const char *text, mn_shape in, int outputs, int batch, mn_err *err) {
  mn_config cfg;
  int rc = mn_config_parse(&cfg, "layers.ini", text, err);
  if (rc == 0) rc = mn_net_create(net, &cfg, in, outputs, MN_LOSS_MSE, batch, err);
  mn_config_free(&cfg);
  if (rc == 0) mn_net_init_params(net, 1);
  return rc;
}

/* conv2d's im2col + SGEMM against the definition, summed directly. */
static void test_conv_forward_reference(int c, int h, int w, int f, int kh, int kw, int stride,
                                        const char *padding, int pad_h, int pad_w) {
  char text[256];
  snprintf(text, sizeof text,
           "[layer]\ntype = conv2d\nfilters = %d\nsize = %d,%d\nstride = %d\npadding = %s\n", f, kh,
           kw, stride, padding);
  mn_net net;
  mn_err err;
  int oh = 0, ow = 0;
  if (strcmp(padding, "same") == 0)
    oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  else
    oh = (h + 2 * pad_h - kh) / stride + 1, ow = (w + 2 * pad_w - kw) / stride + 1;
  CHECK(build(&net, text, (mn_shape){3, {c, h, w}}, f * oh * ow, 2, &err) == 0, "%s", err.msg);
  float x[2 * 3 * 9 * 9];
  for (int i = 0; i < 2 * c * h * w; i++) x[i] = (float)((i * 37) % 17) / 8.0f - 1.0f;
  const float *W = net.layers[0].params, *bias = W + (size_t)f * c * kh * kw;
  for (int i = 0; i < f; i++) net.layers[0].params[(size_t)f * c * kh * kw + i] = 0.1f * i;
  mn_pass pass = {.training = false};
  const float *y = mn_net_forward(&net, &pass, x, 2);
  int bad = 0;
  for (int n = 0; n < 2; n++)
    for (int fi = 0; fi < f; fi++)
      for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
          double sum = bias[fi];
          for (int ci = 0; ci < c; ci++)
            for (int a = 0; a < kh; a++)
              for (int b = 0; b < kw; b++) {
                int ih = i * stride - pad_h + a, iw = j * stride - pad_w + b;
                if (ih >= 0 && ih < h && iw >= 0 && iw < w)
                  sum += (double)W[((fi * c + ci) * kh + a) * kw + b] *
                         x[((n * c + ci) * h + ih) * w + iw];
              }
          float got = y[((n * f + fi) * oh + i) * ow + j];
          bad += fabs(got - sum) > 1e-5 * (1 + fabs(sum));
        }
  CHECK(bad == 0, "conv %dx%d stride %d padding %s: %d outputs differ from the definition", kh, kw,
        stride, padding, bad);
  mn_net_destroy(&net);
}

/* A batch of 5 through a convolution (16 channels, 5x5, same padding) must give the outputs
 * and the summed gradients of 5 single-sample passes: the per-sample buffers it reuses
 * (bordered image, patches) carry nothing from one sample to the next. */
static void test_conv_batch(void) {
  enum { N = 5, C = 16, H = 22, W = 22, F = 4 };
  const char *text = "[layer]\ntype = conv2d\nfilters = 4\nsize = 5\npadding = same\n";
  mn_net net;
  mn_err err;
  CHECK(build(&net, text, (mn_shape){3, {C, H, W}}, F * H * W, N, &err) == 0, "%s", err.msg);
  const size_t in = (size_t)C * H * W, out = (size_t)F * H * W;
  float *x = malloc(N * in * sizeof(float)), *dx = malloc(N * in * sizeof(float));
  float *y = malloc(N * out * sizeof(float)), *dx1 = malloc(in * sizeof(float));
  float *grads = malloc(net.nparams * sizeof(float));
  for (size_t i = 0; i < N * in; i++) x[i] = (float)((i * 7919) % 101) / 50.0f - 1.0f;
  mn_pass pass = {.training = true};
  mn_net_zero_grads(&net);
  memcpy(y, mn_net_forward(&net, &pass, x, N), N * out * sizeof(float));
  float *g = mn_net_output_grad(&net);
  for (size_t i = 0; i < N * out; i++) g[i] = (float)((i * 31) % 17) / 8.0f - 1.0f;
  mn_net_backward(&net, &pass, x, N, dx);
  memcpy(grads, net.grads, net.nparams * sizeof(float));
  mn_net_zero_grads(&net);
  int bad_y = 0, bad_dx = 0, bad_w = 0;
  for (int n = 0; n < N; n++) {
    const float *yn = mn_net_forward(&net, &pass, x + n * in, 1);
    for (size_t i = 0; i < out; i++) bad_y += fabsf(yn[i] - y[n * out + i]) > 1e-5f;
    g = mn_net_output_grad(&net);
    for (size_t i = 0; i < out; i++) g[i] = (float)(((n * out + i) * 31) % 17) / 8.0f - 1.0f;
    mn_net_backward(&net, &pass, x + n * in, 1, dx1);
    for (size_t i = 0; i < in; i++) bad_dx += fabsf(dx1[i] - dx[n * in + i]) > 1e-5f;
  }
  for (size_t i = 0; i < net.nparams; i++)
    bad_w += fabsf(net.grads[i] - grads[i]) > 1e-4f * (1.0f + fabsf(grads[i]));
  CHECK(bad_y == 0 && bad_dx == 0 && bad_w == 0,
        "batched conv differs from single samples: %d outputs, %d input grads, %d weight grads",
        bad_y, bad_dx, bad_w);
  free(x), free(dx), free(y), free(dx1), free(grads);
  mn_net_destroy(&net);
}

static void test_maxpool_ties(void) {
  mn_net net;
  mn_err err;
  CHECK(build(&net, "[layer]\ntype = maxpool\nsize = 2\n[layer]\ntype = flatten\n",
              (mn_shape){3, {1, 2, 4}}, 2, 1, &err) == 0,
        "%s", err.msg);
  /* window 1: all four equal; window 2: the max 5 appears at positions 1 and 3 */
  float x[8] = {1, 1, 2, 5, 1, 1, 0, 5};
  float dx[8];
  mn_pass pass = {.training = true};
  const float *y = mn_net_forward(&net, &pass, x, 1);
  CHECK(y[0] == 1.0f && y[1] == 5.0f, "pooled %g %g", y[0], y[1]);
  float *g = mn_net_output_grad(&net);
  g[0] = 1.0f, g[1] = 2.0f;
  mn_net_backward(&net, &pass, x, 1, dx);
  const float want[8] = {1, 0, 0, 2, 0, 0, 0, 0};
  for (int i = 0; i < 8; i++) CHECK(dx[i] == want[i], "dx[%d] = %g, want %g", i, dx[i], want[i]);
  mn_net_destroy(&net);
}

static void test_dropout(void) {
  enum { N = 8, F = 1000 };
  mn_net net;
  mn_err err;
  CHECK(build(&net, "[layer]\ntype = dropout\nrate = 0.25\n", (mn_shape){1, {F}}, F, N, &err) == 0,
        "%s", err.msg);
  static float x[N * F], first[N * F];
  for (int i = 0; i < N * F; i++) x[i] = 1.0f;
  uint64_t ids[N], swapped[N];
  for (int i = 0; i < N; i++)
    ids[i] = 1000 + (uint64_t)i, swapped[i] = 1000 + (uint64_t)(N - 1 - i);
  mn_pass pass = {.training = true, .seed = 5, .step = 7, .sample_ids = ids};
  const float *y = mn_net_forward(&net, &pass, x, N);
  int zeros = 0, bad_scale = 0;
  for (int i = 0; i < N * F; i++) {
    zeros += y[i] == 0.0f;
    bad_scale += y[i] != 0.0f && fabsf(y[i] - 1.0f / 0.75f) > 1e-6f;
  }
  memcpy(first, y, sizeof first);
  CHECK(fabs(zeros / (double)(N * F) - 0.25) < 0.02, "dropped fraction %g",
        zeros / (double)(N * F));
  CHECK(bad_scale == 0, "%d kept values not scaled by 1/(1 - rate)", bad_scale);
  /* the same samples in reverse batch order get the same masks, moved with them */
  pass.sample_ids = swapped;
  y = mn_net_forward(&net, &pass, x, N);
  int moved = 0;
  for (int n = 0; n < N; n++) moved += memcmp(y + n * F, first + (N - 1 - n) * F, F * 4) != 0;
  CHECK(moved == 0, "%d samples got a different mask at another batch position", moved);
  pass.step = 8;
  y = mn_net_forward(&net, &pass, x, N);
  CHECK(memcmp(y, first, sizeof first) != 0, "the next step reused the masks");
  pass.training = false;
  y = mn_net_forward(&net, &pass, x, N);
  int changed = 0;
  for (int i = 0; i < N * F; i++) changed += y[i] != 1.0f;
  CHECK(changed == 0, "evaluation changed %d values", changed);
  mn_net_destroy(&net);
}

static void test_batchnorm_running_stats(void) {
  enum { N = 16, F = 3 };
  mn_net net;
  mn_err err;
  CHECK(build(&net, "[layer]\ntype = batchnorm\nmomentum = 1.0\n", (mn_shape){1, {F}}, F, N,
              &err) == 0,
        "%s", err.msg);
  float x[N * F];
  for (int n = 0; n < N; n++)
    for (int f = 0; f < F; f++) x[n * F + f] = (float)(f + 1) * (float)n + 10.0f * f;
  mn_pass train = {.training = true}, eval = {.training = false};
  const float *y = mn_net_forward(&net, &train, x, N);
  double mean = 0, sq = 0;
  for (int n = 0; n < N; n++) mean += y[n * F + 1], sq += y[n * F + 1] * y[n * F + 1];
  CHECK(fabs(mean / N) < 1e-5 && fabs(sq / N - 1.0) < 1e-3, "train output mean %g var %g", mean / N,
        sq / N);
  /* with momentum 1 the running statistics are this batch's (variance unbiased) */
  const float *rm = net.layers[0].state, *rv = rm + F;
  CHECK(fabsf(rm[1] - (2.0f * 7.5f + 10.0f)) < 1e-4f, "running mean %g", rm[1]);
  CHECK(fabsf(rv[1] - 4.0f * 22.666666f) < 1e-2f, "running var %g", rv[1]);
  y = mn_net_forward(&net, &eval, x, N);
  float expect = (x[F + 1] - rm[1]) / sqrtf(rv[1] + 1e-5f);
  CHECK(fabsf(y[F + 1] - expect) < 1e-5f, "eval output %g, want %g", y[F + 1], expect);
  mn_net_destroy(&net);
}

static void expect_config_error(const char *text, mn_shape in, const char *want1,
                                const char *want2) {
  mn_net net;
  mn_err err;
  int rc = build(&net, text, in, 10, 2, &err);
  CHECK(rc != 0, "accepted: %s", text);
  if (rc == 0) {
    mn_net_destroy(&net);
    return;
  }
  CHECK(strstr(err.msg, want1) && strstr(err.msg, want2), "message '%s' lacks '%s' / '%s'", err.msg,
        want1, want2);
}

static void test_config_errors(void) {
  expect_config_error("[layer]\ntype = conv2d\nfilters = 4\nsize = 7\n", (mn_shape){3, {1, 5, 5}},
                      "layers.ini:1: [layer 1]", "kernel 7x7 is larger than the padded input 5x5");
  expect_config_error("[layer]\ntype = dense\nunits = 8\n[layer]\ntype = conv2d\nfilters = 2\n"
                      "size = 3\n",
                      (mn_shape){1, {20}}, "[layer 2]", "input of shape (8)");
  expect_config_error("[layer]\ntype = reshape\nshape = 5,5\n", (mn_shape){1, {20}}, "[layer 1]",
                      "cannot reshape it to (5, 5)");
  expect_config_error("[layer]\ntype = lstm\nunits = 4\n", (mn_shape){3, {1, 28, 28}}, "[layer 1]",
                      "(T, features)");
  expect_config_error("[layer]\ntype = maxpool\nsize = 4\n", (mn_shape){3, {2, 3, 3}}, "[layer 1]",
                      "window 4x4 is larger than the input 3x3");
  expect_config_error("[layer]\ntype = maxout\npieces = 3\n", (mn_shape){1, {10}}, "[layer 1]",
                      "10 features are not divisible into groups of 3");
  expect_config_error("[layer]\ntype = conv2d\nfilters = 2\nsize = 3\npadding = wide\n",
                      (mn_shape){3, {1, 5, 5}}, "[layer 1]", "padding 'wide'");
  /* the graph's keys: each message names the line, and the layer or both shapes */
  const mn_shape img = {3, {2, 4, 4}};
#define CONV(name, f, stride)                                                                      \
  "[layer]\nname = " name "\ntype = conv2d\nfilters = " #f "\nsize = 3\npadding = same\n"          \
  "stride = " #stride "\n"
  expect_config_error(CONV("a", 2, 1) "[layer]\ntype = add\ninputs = a, b\n", img,
                      "layers.ini:10: [layer 2] inputs", "no layer above this one is named 'b'");
  expect_config_error(
      CONV("a", 2, 1) "[layer]\ntype = add\ninputs = a, c\n" CONV("c", 2, 1), img,
      "layers.ini:10: [layer 2] inputs",
      "'c' is layer 3 (line 11), below this one: a layer reads only layers above it");
  expect_config_error(CONV("a", 2, 1) CONV("b", 3, 1) "[layer]\ntype = add\ninputs = a, b\n", img,
                      "layers.ini:15: [layer 3]",
                      "add needs inputs of one shape: input 1 ('a') is (2, 4, 4) and input 2 ('b') "
                      "is (3, 4, 4)");
  expect_config_error(CONV("a", 2, 1) CONV("b", 3, 2) "[layer]\ntype = concat\ninputs = a, b\n",
                      img, "layers.ini:15: [layer 3]",
                      "concat needs images of one height and width: input 1 ('a') is (2, 4, 4) and "
                      "input 2 ('b') is (3, 2, 2)");
  expect_config_error(
      CONV("a", 2, 1) CONV("b", 2, 1) "[layer]\ntype = flatten\ninputs = a\n", img,
      "layers.ini:8: [layer 2]",
      "no layer reads this layer's output ('b') (only the last layer's may go unread");
  expect_config_error(CONV("layer2", 2, 1), img, "layers.ini:2: [layer 1] name",
                      "'layer2' is reserved");
  expect_config_error(CONV("input", 2, 1), img, "layers.ini:2: [layer 1] name",
                      "'input' is reserved");
  expect_config_error(CONV("a", 2, 1) CONV("a", 2, 1), img, "layers.ini:9: [layer 2] name",
                      "'a' already names layer 1");
  expect_config_error(CONV("a", 2, 1) "[layer]\ntype = add\ninputs = a\n", img,
                      "layers.ini:8: [layer 2]", "add needs two or more inputs");
  expect_config_error(CONV("a", 2, 1) "[layer]\ntype = flatten\ninputs = a, input\n", img,
                      "layers.ini:8: [layer 2]", "flatten reads one input, and inputs names 2");
  expect_config_error(CONV("a", 2, 1) "[layer]\ntype = add\ninputs = a, a\n", img,
                      "layers.ini:10: [layer 2] inputs", "'a' is named twice");
#undef CONV
}

/* 2x2 stride-2 max pooling (a branch-free fast path) against the definition on odd-sized
 * planes full of ties: outputs and where backward sends each gradient (the first maximum in
 * row-major order). */
static void test_maxpool_reference(void) {
  /* OW = 18: whole vectors of windows and a remainder (the 2x2 path runs in vector lanes) */
  enum { B = 3, C = 3, H = 7, W = 37, OH = 3, OW = 18 };
  mn_net net;
  mn_err err;
  CHECK(build(&net, "[layer]\ntype = maxpool\nsize = 2\n[layer]\ntype = flatten\n",
              (mn_shape){3, {C, H, W}}, C * OH * OW, B, &err) == 0,
        "%s", err.msg);
  static float x[B * C * H * W], dx[B * C * H * W], want_dx[B * C * H * W];
  for (int i = 0; i < B * C * H * W; i++) x[i] = (float)((i * 7919) % 4) - 1.0f; /* -1..2 */
  mn_pass pass = {.training = true};
  const float *y = mn_net_forward(&net, &pass, x, B);
  float *g = mn_net_output_grad(&net);
  for (int o = 0; o < B * C * OH * OW; o++) g[o] = (float)(o + 1);
  int wrong = 0;
  for (int n = 0; n < B; n++)
    for (int c = 0; c < C; c++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          const int o = ((n * C + c) * OH + oh) * OW + ow;
          int at = ((n * C + c) * H + 2 * oh) * W + 2 * ow;
          for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
              const int k = ((n * C + c) * H + 2 * oh + i) * W + 2 * ow + j;
              if (x[k] > x[at]) at = k;
            }
          wrong += y[o] != x[at];
          want_dx[at] += (float)(o + 1);
        }
  CHECK(wrong == 0, "%d pooled values differ from the definition", wrong);
  mn_net_backward(&net, &pass, x, B, dx);
  int misrouted = 0;
  for (int i = 0; i < B * C * H * W; i++) misrouted += dx[i] != want_dx[i];
  CHECK(misrouted == 0, "%d input gradients differ from the definition", misrouted);
  mn_net_destroy(&net);
}

/* mn_first_nonfinite: the gradient scan must find a NaN or infinity anywhere (block
 * boundaries, the unrolled tail), and nothing in finite data of any sign. */
static void test_first_nonfinite(void) {
  enum { N = 3 * 4096 + 37 };
  static float x[N];
  for (size_t i = 0; i < N; i++) x[i] = (i % 3 == 0 ? -1.0f : 1.0f) * 3.0e38f * (float)(i % 2);
  x[7] = -0.0f;
  CHECK(mn_first_nonfinite(x, N) == N, "finite data flagged at %zu", mn_first_nonfinite(x, N));
  const size_t at[] = {0, 15, 16, 4095, 4096, 8191, N - 37, N - 1};
  const float bad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (size_t a = 0; a < sizeof at / sizeof at[0]; a++)
    for (int b = 0; b < 4; b++) {
      const float keep = x[at[a]];
      x[at[a]] = bad[b];
      size_t got = mn_first_nonfinite(x, N);
      CHECK(got == at[a], "value %g at %zu found at %zu", (double)bad[b], at[a], got);
      x[at[a]] = keep;
    }
  x[5000] = INFINITY; /* from an unaligned start, as the incremental scan calls it */
  CHECK(mn_first_nonfinite(x + 3, N - 3) == 4997, "unaligned: found at %zu",
        mn_first_nonfinite(x + 3, N - 3));
  x[100] = NAN, x[9000] = NAN;
  CHECK(mn_first_nonfinite(x, N) == 100, "not the first of two");
  CHECK(mn_first_nonfinite(x, 0) == 0, "empty");
}

/* The network's plan for a conv + ReLU + max pool block: the ReLU runs after the pool (a
 * quarter of the elements) and the pool writes its input gradient over the convolution's
 * output, which backward no longer reads; not so before a layer that does read its input. */
static void test_plan(void) {
  mn_net net;
  mn_err err;
  CHECK(build(&net,
              "[layer]\ntype = conv2d\nfilters = 2\nsize = 3\nactivation = relu\n"
              "[layer]\ntype = maxpool\n"
              "[layer]\ntype = conv2d\nfilters = 2\nsize = 1\nactivation = relu\n"
              "[layer]\ntype = avgpool\n[layer]\ntype = dense\nunits = 2\n",
              (mn_shape){3, {1, 10, 10}}, 2, 2, &err) == 0,
        "%s", err.msg);
  const mn_layer *L = net.layers;
  CHECK(L[0].run_act == MN_ACT_NONE && L[1].run_act == MN_ACT_RELU,
        "ReLU not moved past the max pool");
  CHECK(L[1].dx_over_input, "max pool does not write its dx over the conv's output");
  CHECK(L[2].run_act == MN_ACT_RELU && L[3].run_act == MN_ACT_NONE, "ReLU moved past an avgpool");
  CHECK(!L[3].dx_over_input, "avgpool writes over an output its ReLU still needs");
  CHECK(!L[2].dx_over_input && !L[4].dx_over_input, "dx over an input the layer reads");
  CHECK(L[0].stream_rows == 2 && L[1].stream_rows == 0 && L[2].stream_rows == 0,
        "streamed: conv %d, pool %d, conv before avgpool %d (want the first pair only)",
        L[0].stream_rows, L[1].stream_rows, L[2].stream_rows);
  mn_net_destroy(&net);
}

/* In a graph the plan fuses nothing across an output that two layers read: the ReLU stays
 * (the other reader needs it), no dx is written over it, nothing is streamed into it. The
 * memory plan: buffers live at the same time never overlap, and in a forward-only plan a
 * chain of layers holds two outputs at a time. */
static bool disjoint(const float *a, size_t na, const float *b, size_t nb) {
  return a + na <= b || b + nb <= a;
}

static void test_graph_plan(void) {
  mn_net net;
  mn_err err;
  CHECK(build(&net,
              "[layer]\nname = c\ntype = conv2d\nfilters = 2\nsize = 3\nactivation = relu\n"
              "[layer]\nname = p\ntype = maxpool\n"
              "[layer]\nname = q\ntype = maxpool\ninputs = c\n"
              "[layer]\ntype = add\ninputs = p, q\n[layer]\ntype = dense\nunits = 2\n",
              (mn_shape){3, {1, 10, 10}}, 2, 4, &err) == 0,
        "%s", err.msg);
  const mn_layer *L = net.layers;
  CHECK(net.graph && L[0].readers == 2, "graph %d, readers %d", net.graph, L[0].readers);
  CHECK(L[0].run_act == MN_ACT_RELU && L[1].run_act == MN_ACT_NONE,
        "ReLU moved past a pool although another layer reads its output");
  CHECK(!L[1].dx_over_input && !L[2].dx_over_input, "dx over an output another layer reads");
  CHECK(L[0].stream_rows == 0, "streamed into two readers");
  CHECK(net.spares[1 * MN_MAX_INPUTS] && !net.spares[2 * MN_MAX_INPUTS],
        "the reader whose backward runs first (q) writes c's gradient, the other a spare");
  /* backward of layer 2 (q) writes douts[0] while reading douts[2]; of layer 1 a spare
   * while reading douts[1] and adds it to douts[0]; douts[4] (the loss's) meets the output
   * of layer 4 */
  const size_t b = 4;
  const size_t c = 2 * 8 * 8, pq = 2 * 4 * 4; /* floats per sample of c, and of p and q */
  CHECK(disjoint(net.douts[0], b * c, net.douts[2], b * pq) &&
            disjoint(net.spares[1 * MN_MAX_INPUTS], b * c, net.douts[1], b * pq) &&
            disjoint(net.douts[0], b * c, net.spares[1 * MN_MAX_INPUTS], b * c) &&
            disjoint(net.douts[4], b * 2, net.acts[4], b * 2) &&
            disjoint(net.acts[0], b * c, net.douts[0], b * c),
        "buffers live at the same time overlap");
  CHECK(net.arena_bytes < net.layer_bytes, "planned %zu bytes, one per buffer %zu", net.arena_bytes,
        net.layer_bytes);
  mn_net_destroy(&net);

  /* a stack of 6 dense layers of 100 units, forward only: two outputs at a time */
  CHECK(build(&net,
              "[layer]\ntype = dense\nunits = 100\n[layer]\ntype = dense\nunits = 100\n"
              "[layer]\ntype = dense\nunits = 100\n[layer]\ntype = dense\nunits = 100\n"
              "[layer]\ntype = dense\nunits = 100\n[layer]\ntype = dense\nunits = 100\n",
              (mn_shape){1, {10}}, 100, 8, &err) == 0,
        "%s", err.msg);
  CHECK(mn_net_plan_forward_only(&net, &err) == 0, "%s", err.msg);
  CHECK(net.arena_bytes == 2 * 8 * 100 * sizeof(float) && net.layer_bytes == 6 * 8 * 100 * 4,
        "forward-only plan: %zu bytes of %zu", net.arena_bytes, net.layer_bytes);
  float x[8 * 10], ref[8 * 100];
  for (int i = 0; i < 80; i++) x[i] = (float)(i % 7) - 3.0f;
  mn_pass pass = {.seed = 1};
  memcpy(ref, mn_net_forward(&net, &pass, x, 8), sizeof ref);
  CHECK(mn_net_set_streaming(&net, false, &err) == 0, "%s", err.msg);
  CHECK(!net.backward_planned, "streaming off planned backward");
  CHECK(memcmp(ref, mn_net_forward(&net, &pass, x, 8), sizeof ref) == 0, "outputs changed");
  mn_net_destroy(&net);
}

/* A conv + max pool pair streamed a few rows at a time (mn_layer.stream_rows) computes the
 * same bits as the pair run on the whole batch, in training (the winners kept per row) and in
 * evaluation: outputs, parameter gradients and the input gradient. 13 rows do not divide
 * into the groups (5 and 10 rows here), so the last group is short. */
static void test_streaming(void) {
  enum { N = 13 };
  const char *text = "[layer]\ntype = conv2d\nfilters = 8\nsize = 5\npadding = same\n"
                     "activation = relu\n[layer]\ntype = maxpool\n"
                     "[layer]\ntype = conv2d\nfilters = 16\nsize = 3\npadding = same\n"
                     "activation = relu\n[layer]\ntype = maxpool\n"
                     "[layer]\ntype = dense\nunits = 10\n";
  mn_net net;
  mn_err err;
  CHECK(build(&net, text, (mn_shape){3, {1, 28, 28}}, 10, N, &err) == 0, "%s", err.msg);
  CHECK(net.layers[0].stream_rows == 5 && net.layers[2].stream_rows == 10,
        "rows per call: %d and %d (want 5 and 10: 128 KiB of each conv's output)",
        net.layers[0].stream_rows, net.layers[2].stream_rows);
  const size_t in = 28 * 28, out = 10;
  float *x = malloc(N * in * sizeof(float));
  for (size_t i = 0; i < N * in; i++) x[i] = (float)((i * 7919) % 101) / 50.0f - 1.0f;
  float *y[2], *ye[2], *g[2], *dx[2];
  for (int run = 0; run < 2; run++) {
    y[run] = malloc(N * out * sizeof(float)), ye[run] = malloc(N * out * sizeof(float));
    g[run] = malloc(net.nparams * sizeof(float)), dx[run] = malloc(N * in * sizeof(float));
    mn_pass train = {.training = true}, eval = {.training = false};
    memcpy(ye[run], mn_net_forward(&net, &eval, x, N), N * out * sizeof(float));
    mn_net_zero_grads(&net);
    memcpy(y[run], mn_net_forward(&net, &train, x, N), N * out * sizeof(float));
    float *d = mn_net_output_grad(&net);
    for (size_t i = 0; i < N * out; i++) d[i] = (float)((i * 31) % 17) / 8.0f - 1.0f;
    mn_net_backward(&net, &train, x, N, dx[run]);
    memcpy(g[run], net.grads, net.nparams * sizeof(float));
    CHECK(mn_net_set_streaming(&net, false, &err) == 0, "%s", err.msg); /* the reference */
  }
  CHECK(net.layers[0].stream_rows == 0 && net.layers[2].stream_rows == 0, "streaming not off");
  CHECK(memcmp(y[0], y[1], N * out * sizeof(float)) == 0, "training outputs differ");
  CHECK(memcmp(ye[0], ye[1], N * out * sizeof(float)) == 0, "evaluation outputs differ");
  CHECK(memcmp(g[0], g[1], net.nparams * sizeof(float)) == 0, "parameter gradients differ");
  CHECK(memcmp(dx[0], dx[1], N * in * sizeof(float)) == 0, "input gradients differ");
  size_t nonzero = 0;
  for (size_t i = 0; i < net.nparams; i++) nonzero += g[0][i] != 0.0f;
  CHECK(nonzero > net.nparams / 2, "only %zu of %zu gradients are nonzero", nonzero, net.nparams);
  for (int run = 0; run < 2; run++) free(y[run]), free(ye[run]), free(g[run]), free(dx[run]);
  free(x);
  mn_net_destroy(&net);
}

static void no_listener(void *user, size_t upto, size_t checked_from) {
  (void)user, (void)upto, (void)checked_from;
}

/* mn_pass.fresh_grads: backward over a gradient buffer full of NaN must give what backward
 * gives over a zeroed one (== per value: a store may keep a -0 that 0 + -0 makes +0), for
 * layers that store their gradients (dense, its weight gradient in 4 announced blocks here;
 * conv2d in a streamed pair, whose first group of rows stores and the later ones add) and
 * for those the network zeroes first (batchnorm, LSTM); a fixed pass adds. */
static void test_fresh_grads(void) {
  static const struct {
    const char *name, *text;
    mn_shape in;
    int outputs, batch;
    bool streamed; /* the conv and pool go back as a streamed pair */
  } nets[] = {
      {"dense",
       "[layer]\ntype = dense\nunits = 300\nactivation = relu\n"
       "[layer]\ntype = dense\nunits = 10\n",
       {1, {784}},
       10,
       8,
       false},
      {"conv stream",
       "[layer]\ntype = conv2d\nfilters = 8\nsize = 5\npadding = same\n"
       "activation = relu\n[layer]\ntype = maxpool\n"
       "[layer]\ntype = dense\nunits = 10\n",
       {3, {1, 28, 28}},
       10,
       13,
       true},
      {"batchnorm",
       "[layer]\ntype = dense\nunits = 16\n[layer]\ntype = batchnorm\n"
       "activation = relu\n[layer]\ntype = dense\nunits = 4\n",
       {1, {12}},
       4,
       6,
       false},
      {"lstm",
       "[layer]\ntype = lstm\nunits = 8\n[layer]\ntype = dense\nunits = 4\n",
       {2, {5, 3}},
       4,
       6,
       false},
  };
  for (size_t c = 0; c < sizeof nets / sizeof nets[0]; c++) {
    mn_net net;
    mn_err err;
    CHECK(build(&net, nets[c].text, nets[c].in, nets[c].outputs, nets[c].batch, &err) == 0,
          "%s: %s", nets[c].name, err.msg);
    const int n = nets[c].batch;
    const size_t in = mn_shape_count(nets[c].in), out = (size_t)nets[c].outputs;
    CHECK(!nets[c].streamed || net.layers[0].stream_rows > 0, "%s: not streamed", nets[c].name);
    float *x = malloc(n * in * sizeof(float)), *ref = malloc(net.nparams * sizeof(float));
    float *dx[2] = {malloc(n * in * sizeof(float)), malloc(n * in * sizeof(float))};
    for (size_t i = 0; i < n * in; i++) x[i] = (float)((i * 7919) % 101) / 50.0f - 1.0f;
    for (int fresh = 0; fresh < 2; fresh++) {
      mn_pass pass = {.training = true,
                      .listen = {.grads_ready = no_listener, .grads_blocks = 4},
                      .fresh_grads = fresh};
      if (fresh)
        for (size_t i = 0; i < net.nparams; i++) net.grads[i] = NAN;
      else
        mn_net_zero_grads(&net);
      mn_net_forward(&net, &pass, x, n);
      float *d = mn_net_output_grad(&net);
      for (size_t i = 0; i < n * out; i++) d[i] = (float)((i * 31) % 17) / 8.0f - 1.0f;
      mn_net_backward(&net, &pass, x, n, dx[fresh]);
      if (!fresh) memcpy(ref, net.grads, net.nparams * sizeof(float));
    }
    size_t bad = 0, nonzero = 0;
    for (size_t i = 0; i < net.nparams; i++)
      bad += !(net.grads[i] == ref[i]), nonzero += ref[i] != 0;
    CHECK(bad == 0, "%s: %zu of %zu gradients differ over a NaN buffer", nets[c].name, bad,
          net.nparams);
    CHECK(nonzero > net.nparams / 2, "%s: only %zu nonzero gradients", nets[c].name, nonzero);
    CHECK(memcmp(dx[0], dx[1], n * in * sizeof(float)) == 0, "%s: input gradients differ",
          nets[c].name);
    /* a fixed pass adds, fresh_grads or not (its sums have an order to keep): over the
     * gradients just computed, the same batch again gives twice them */
    mn_pass plain = {.training = true, .listen.grads_ready = no_listener};
    mn_pass fixed = {
        .training = true, .listen.grads_ready = no_listener, .fresh_grads = true, .fixed.on = true};
    mn_net_forward(&net, &plain, x, n);
    float *d = mn_net_output_grad(&net);
    for (size_t i = 0; i < n * out; i++) d[i] = (float)((i * 31) % 17) / 8.0f - 1.0f;
    mn_net_backward(&net, &fixed, x, n, dx[0]);
    bad = 0;
    for (size_t i = 0; i < net.nparams; i++)
      bad += !(fabsf(net.grads[i] - 2.0f * ref[i]) <= 1e-4f * (1.0f + fabsf(ref[i])));
    CHECK(bad == 0, "%s: %zu of %zu gradients not doubled by a fixed pass", nets[c].name, bad,
          net.nparams);
    free(x), free(ref), free(dx[0]), free(dx[1]);
    mn_net_destroy(&net);
  }
}

/* What a gradient listener was told: every announcement moves forward, and what backward
 * vouched for ([checked_from, upto)) holds no NaN or infinity. */
typedef struct {
  const float *grads;
  size_t last, vouched, false_vouched, calls;
  bool backwards;
} listener;

static void listen(void *user, size_t upto, size_t checked_from) {
  listener *t = user;
  t->calls++;
  t->backwards |= upto < t->last || (checked_from < upto && checked_from < t->last);
  for (size_t i = checked_from; i < upto; i++) t->false_vouched += !isfinite(t->grads[i]);
  if (checked_from < upto) t->vouched += upto - checked_from;
  if (upto > t->last) t->last = upto;
}

/* mn_pass.grads_ready's checked_from: dense layers vouch for the weight gradients their GEMM
 * found finite (all of them here: both run on the kernel, the first in 4 announced blocks;
 * the biases are left to the scan), and for none when a NaN in the input reaches them. */
static void test_grads_vouched(void) {
  mn_net net;
  mn_err err;
  const int n = 64, in = 784;
  CHECK(build(&net,
              "[layer]\ntype = dense\nunits = 300\nactivation = relu\n"
              "[layer]\ntype = dense\nunits = 10\n",
              (mn_shape){1, {in}}, 10, n, &err) == 0,
        "%s", err.msg);
  float *x = malloc((size_t)n * in * sizeof(float));
  for (int nan = 0; nan < 2; nan++) {
    for (size_t i = 0; i < (size_t)n * in; i++) x[i] = (float)((i * 7919) % 101) / 50.0f - 1.0f;
    if (nan) x[0] = NAN;
    listener t = {.grads = net.grads};
    mn_pass pass = {.training = true,
                    .listen = {.grads_ready = listen, .grads_user = &t, .grads_blocks = 4},
                    .fresh_grads = true};
    mn_net_forward(&net, &pass, x, n);
    float *d = mn_net_output_grad(&net);
    for (size_t i = 0; i < (size_t)n * 10; i++) d[i] = (float)((i * 31) % 17) / 8.0f - 1.0f;
    mn_net_backward(&net, &pass, x, n, NULL);
    CHECK(!t.backwards, "nan %d: an announcement went backwards", nan);
    CHECK(t.false_vouched == 0, "nan %d: %zu non-finite gradients vouched for", nan,
          t.false_vouched);
    CHECK(t.last == net.nparams, "nan %d: announced up to %zu of %zu", nan, t.last, net.nparams);
    if (nan)
      CHECK(t.vouched == 0, "a NaN input: %zu gradients vouched for", t.vouched);
    else if (mn_gemm_nn_own(300, in, n) && mn_gemm_nn_own(10, 300, n))
      CHECK(t.vouched == net.nparams - 300 - 10 && t.calls >= 5,
            "%zu of %zu gradients (%zu weights) vouched for in %zu calls", t.vouched, net.nparams,
            net.nparams - 310, t.calls);
  }
  free(x);
  mn_net_destroy(&net);
}

/* Draws 200,000 weights and compares their variance with the scheme's (a relative error of
 * ~0.3-0.5% for this many; a wrong gain is off by 20% or more here). */
static void check_init(int kind, mn_activation act, float alpha, double want_var, double limit,
                       const char *what) {
  enum { N = 200000, FAN_IN = 300, FAN_OUT = 100 };
  float *w = malloc(N * sizeof(float));
  mn_init_weights(w, N, kind, act, alpha, FAN_IN, FAN_OUT, 7, 2);
  double sum = 0.0, sq = 0.0, max = 0.0;
  for (int i = 0; i < N; i++) sum += w[i], sq += (double)w[i] * w[i], max = fmax(max, fabs(w[i]));
  double mean = sum / N, var = sq / N - mean * mean;
  CHECK(fabs(var / want_var - 1.0) < 0.03, "%s: variance %g, want %g", what, var, want_var);
  CHECK(fabs(mean) < 4.0 * sqrt(want_var / N), "%s: mean %g", what, mean);
  if (limit > 0.0)
    CHECK(max <= limit && max > 0.999 * limit, "%s: largest |w| %g, limit %g", what, max, limit);
  else
    CHECK(max > 3.5 * sqrt(want_var), "%s: largest |w| %g: not a normal distribution", what, max);
  free(w);
}

static void test_init(void) {
  const double xavier = 2.0 / 400.0, he = 2.0 / 300.0, leaky = he / 1.25;
  check_init(MN_INIT_XAVIER_UNIFORM, MN_ACT_TANH, 0.0f, xavier, sqrt(3.0 * xavier),
             "xavier_uniform");
  check_init(MN_INIT_XAVIER_NORMAL, MN_ACT_TANH, 0.0f, xavier, 0.0, "xavier_normal");
  check_init(MN_INIT_HE_UNIFORM, MN_ACT_RELU, 0.0f, he, sqrt(3.0 * he), "he_uniform");
  check_init(MN_INIT_HE_NORMAL, MN_ACT_RELU, 0.0f, he, 0.0, "he_normal");
  check_init(MN_INIT_HE_UNIFORM, MN_ACT_LEAKY_RELU, 0.5f, leaky, sqrt(3.0 * leaky),
             "he_uniform, leaky ReLU 0.5");
  check_init(MN_INIT_HE_NORMAL, MN_ACT_LEAKY_RELU, 0.5f, leaky, 0.0, "he_normal, leaky ReLU 0.5");
  check_init(MN_INIT_AUTO, MN_ACT_RELU, 0.0f, he, 0.0, "auto, ReLU");
  check_init(MN_INIT_AUTO, MN_ACT_LEAKY_RELU, 0.5f, leaky, 0.0, "auto, leaky ReLU 0.5");
  check_init(MN_INIT_AUTO, MN_ACT_ELU, 1.0f, he, 0.0, "auto, ELU");
  const mn_activation glorot[] = {MN_ACT_NONE, MN_ACT_SIGMOID, MN_ACT_TANH, MN_ACT_SOFTMAX};
  for (size_t i = 0; i < sizeof glorot / sizeof *glorot; i++)
    check_init(MN_INIT_AUTO, glorot[i], 0.0f, xavier, sqrt(3.0 * xavier), "auto, not a rectifier");
  /* The values depend on the seed and the layer, not on how many are drawn. */
  float a[64], b[16], c[16];
  mn_init_weights(a, 64, MN_INIT_HE_NORMAL, MN_ACT_RELU, 0.0f, 300, 100, 7, 2);
  mn_init_weights(b, 16, MN_INIT_HE_NORMAL, MN_ACT_RELU, 0.0f, 300, 100, 7, 2);
  mn_init_weights(c, 16, MN_INIT_HE_NORMAL, MN_ACT_RELU, 0.0f, 300, 100, 7, 3);
  CHECK(memcmp(a, b, sizeof b) == 0, "a prefix of the draws differs");
  CHECK(memcmp(b, c, sizeof c) != 0, "two layers drew the same weights");
}

int main(void) {
  test_init();
  test_plan();
  test_graph_plan();
  test_streaming();
  test_conv_forward_reference(2, 7, 6, 3, 3, 3, 1, "valid", 0, 0);
  test_conv_forward_reference(3, 9, 8, 2, 3, 2, 2, "same", 1, 0);
  test_conv_forward_reference(1, 6, 6, 4, 5, 5, 1, "same", 2, 2);
  test_conv_forward_reference(2, 8, 7, 2, 4, 3, 3, "2", 2, 2);
  test_conv_batch();
  test_maxpool_ties();
  test_dropout();
  test_batchnorm_running_stats();
  test_config_errors();
  test_first_nonfinite();
  test_maxpool_reference();
  test_fresh_grads();
  test_grads_vouched();
  return check_report("test_layers");
}
