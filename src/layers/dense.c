/* dense.c: the fully connected layer, y = x W^T + b, on OpenBLAS SGEMM (the network applies
 * the activation).
 *
 * in x (B, in) -> out y (B, units); W (units, in) as in PyTorch's nn.Linear; b (units).
 * Inputs of any shape are flattened per sample. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"

static int dense_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  long units;
  if (!mn_cfg_has(cfg, "units")) {
    char where[700];
    mn_layer_where(cfg, where, sizeof where);
    return mn_fail(err, "%s: dense layer needs 'units'", where);
  }
  if (mn_cfg_int(cfg, "units", 0, 1, 1 << 24, &units, err) != 0 ||
      mn_layer_parse_init(l, cfg, err) != 0)
    return -1;
  l->units = (int)units;
  l->out = (mn_shape){.rank = 1, .dim = {(int)units}};
  size_t in = mn_shape_count(l->in);
  if (mn_mul_size((size_t)units, in + 1, &l->nparams) != 0)
    return mn_fail(err, "dense layer too large");
  return 0;
}

static void dense_init(mn_layer *l, uint64_t seed) {
  size_t in = mn_shape_count(l->in), out = (size_t)l->units;
  mn_init_weights(l->params, out * in, l->init_kind, l->act, in, out, seed, l->index);
  memset(l->params + out * in, 0, out * sizeof(float));
}

static void dense_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  const int in = (int)mn_shape_count(l->in), out = l->units;
  const float *W = l->params, *b = l->params + (size_t)out * in;
  /* Start from the bias, then one SGEMM adds x W^T. */
  for (int i = 0; i < batch; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out, in, 1.0f, x, in, W, in, 1.0f, y,
              out);
}

void mn_dense_weight_grad(int out, int in, int batch, const float *dy, const float *x, float *dW) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, batch, 1.0f, dy, out, x, in, 1.0f,
              dW, in);
}

static void dense_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y, float *dy,
                           float *dx, int batch) {
  const int in = (int)mn_shape_count(l->in), out = l->units;
  const float *W = l->params;
  float *dW = p->weight_grads_onto ? p->weight_grads_onto + l->param_offset : l->grads;
  float *db = l->grads + (size_t)out * in;
  mn_dense_weight_grad(out, in, batch, dy, x, dW);
  for (int i = 0; i < batch; i++) {
    const float *row = dy + (size_t)i * out;
    for (int j = 0; j < out; j++) db[j] += row[j];
  }
  /* dx (B, in) = dy (B, out) W (out, in) */
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, in, out, 1.0f, dy, out, W, in,
                0.0f, dx, in);
}

static int dense_tensors(const mn_layer *l, mn_tensor_info *t, int max) {
  size_t in = mn_shape_count(l->in), out = (size_t)l->units;
  if (max < 2) return 0;
  t[0] = (mn_tensor_info){.name = "W", .rank = 2, .dim = {out, in}, .offset = 0};
  t[1] = (mn_tensor_info){.name = "b", .rank = 1, .dim = {out}, .offset = out * in};
  return 2;
}

const mn_layer_ops mn_dense_ops = {
    .type = "dense",
    .configure = dense_configure,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .tensors = dense_tensors,
};
