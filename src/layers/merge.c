/* merge.c: the layers of two or more inputs, which make a stack a graph.
 *
 * add:    y = x0 + x1 + ... (summed in the order of `inputs`), inputs of one shape; each
 *         input's gradient is dy (a residual connection: y = x + F(x)).
 * concat: the inputs side by side, along channels for (C, H, W) samples (equal H and W),
 *         along features for vectors; each input's gradient is its part of dy.
 * No keys of their own, no parameters; the network applies `activation` after them (relu
 * after add, as in a ResNet block). */
#include <string.h>

#include "layer.h"

static int too_few(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  char where[700];
  mn_layer_where(cfg, where, sizeof where);
  return mn_fail(err, "%s: %s needs two or more inputs (inputs = a, b, ...), got %d", where,
                 l->ops->type, l->ninputs);
}

/* "input 2 ('b1') is (16, 14, 14) and input 1 ('a') is (32, 14, 14)" */
static int mismatch(mn_layer *l, mn_cfg_section *cfg, int k, const char *need, mn_err *err) {
  char where[700], a[64], b[64], na[64], nb[64];
  mn_layer_where(cfg, where, sizeof where);
  mn_shape_format(l->ins[0], a, sizeof a);
  mn_shape_format(l->ins[k], b, sizeof b);
  mn_layer_input_name(cfg, 0, na, sizeof na);
  mn_layer_input_name(cfg, k, nb, sizeof nb);
  return mn_fail(err, "%s: %s needs %s: input 1 ('%s') is %s and input %d ('%s') is %s", where,
                 l->ops->type, need, na, a, k + 1, nb, b);
}

static int add_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  if (l->ninputs < 2) return too_few(l, cfg, err);
  for (int k = 1; k < l->ninputs; k++) {
    bool same = l->ins[k].rank == l->ins[0].rank;
    for (int d = 0; same && d < l->ins[0].rank; d++) same = l->ins[k].dim[d] == l->ins[0].dim[d];
    if (!same) return mismatch(l, cfg, k, "inputs of one shape", err);
  }
  l->out = l->ins[0];
  return 0;
}

static void add_forward(mn_layer *l, const mn_pass *p, const float *const *xs, float *y,
                        int batch) {
  const size_t n = (size_t)batch * mn_shape_count(l->out);
  const float *a = xs[0], *b = xs[1];
  for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
  for (int k = 2; k < l->ninputs; k++)
    for (size_t i = 0; i < n; i++) y[i] += xs[k][i];
}

static void add_backward(mn_layer *l, const mn_pass *p, float *dy, float *const *dxs, int batch) {
  const size_t bytes = (size_t)batch * mn_shape_count(l->out) * sizeof(float);
  for (int k = 0; k < l->ninputs; k++)
    if (dxs[k]) memcpy(dxs[k], dy, bytes);
}

static int concat_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  if (l->ninputs < 2) return too_few(l, cfg, err);
  const mn_shape s0 = l->ins[0];
  if (s0.rank != 1 && s0.rank != 3) return mismatch(l, cfg, 0, "vectors or (C, H, W) images", err);
  l->out = s0;
  for (int k = 1; k < l->ninputs; k++) {
    const mn_shape s = l->ins[k];
    if (s.rank != s0.rank)
      return mismatch(l, cfg, k, "inputs of one rank (all vectors or all images)", err);
    if (s.rank == 3 && (s.dim[1] != s0.dim[1] || s.dim[2] != s0.dim[2]))
      return mismatch(l, cfg, k, "images of one height and width", err);
    l->out.dim[0] += s.dim[0];
  }
  return 0;
}

/* Each sample's output is its inputs' samples one after the other (channels are outermost
 * in (C, H, W)). */
static void concat_forward(mn_layer *l, const mn_pass *p, const float *const *xs, float *y,
                           int batch) {
  const size_t out = mn_shape_count(l->out);
  for (int n = 0; n < batch; n++) {
    float *yn = y + (size_t)n * out;
    for (int k = 0; k < l->ninputs; k++) {
      const size_t len = mn_shape_count(l->ins[k]);
      memcpy(yn, xs[k] + (size_t)n * len, len * sizeof(float));
      yn += len;
    }
  }
}

static void concat_backward(mn_layer *l, const mn_pass *p, float *dy, float *const *dxs,
                            int batch) {
  const size_t out = mn_shape_count(l->out);
  for (int n = 0; n < batch; n++) {
    const float *dn = dy + (size_t)n * out;
    for (int k = 0; k < l->ninputs; k++) {
      const size_t len = mn_shape_count(l->ins[k]);
      if (dxs[k]) memcpy(dxs[k] + (size_t)n * len, dn, len * sizeof(float));
      dn += len;
    }
  }
}

static void merge_init(mn_layer *l, uint64_t seed) {}

static int merge_tensors(const mn_layer *l, mn_tensor_info *t, int max) { return 0; }

const mn_layer_ops mn_add_ops = {
    .type = "add",
    .configure = add_configure,
    .init = merge_init,
    .forward_n = add_forward,
    .backward_n = add_backward,
    .tensors = merge_tensors,
    .backward_skips_x = true,
    .backward_skips_y = true,
};

const mn_layer_ops mn_concat_ops = {
    .type = "concat",
    .configure = concat_configure,
    .init = merge_init,
    .forward_n = concat_forward,
    .backward_n = concat_backward,
    .tensors = merge_tensors,
    .backward_skips_x = true,
    .backward_skips_y = true,
};
