/* dense.c: the fully connected layer, y = x W^T + b, on OpenBLAS SGEMM (the network applies
 * the activation); in passes with fixed_order on the fixed-sum GEMM (fixed_gemm.h), through a
 * copy of W packed once per step.
 *
 * in x (B, in) -> out y (B, units); W (units, in) as in PyTorch's nn.Linear; b (units).
 * Inputs of any shape are flattened per sample. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixed_gemm.h"
#include "layer.h"

/* l->priv: W^T packed for the fixed-sum GEMM (fixed_setup), NULL until then. */

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

static int dense_fixed_setup(mn_layer *l, mn_err *err) {
  if (l->priv) return 0;
  l->priv = mn_alloc(mn_fixed_packed_size(l->units, (int)mn_shape_count(l->in)), sizeof(float),
                     "packed dense weights", err);
  return l->priv ? 0 : -1;
}

static void dense_fixed_refresh(mn_layer *l) {
  if (l->priv) mn_fixed_pack(l->units, (int)mn_shape_count(l->in), l->params, l->priv);
}

static void dense_destroy(mn_layer *l) {
  free(l->priv);
  l->priv = NULL;
}

static void dense_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  const int in = (int)mn_shape_count(l->in), out = l->units;
  const float *W = l->params, *b = l->params + (size_t)out * in;
  /* Start from the bias, then one GEMM adds x W^T. */
  for (int i = 0; i < batch; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
  if (p->fixed_order && l->priv)
    mn_fixed_gemm(&(mn_fixed_gemm_args){.m = batch,
                                        .n = out,
                                        .k = in,
                                        .a = x,
                                        .a_row = (size_t)in,
                                        .a_k = 1,
                                        .b = l->priv,
                                        .b_k = MN_FIXED_NR,
                                        .b_panel = (size_t)MN_FIXED_NR * (size_t)in,
                                        .c = y,
                                        .ldc = (size_t)out,
                                        .add = true});
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out, in, 1.0f, x, in, W, in, 1.0f,
                y, out);
}

static void dense_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y, float *dy,
                           float *dx, int batch) {
  const int in = (int)mn_shape_count(l->in), out = l->units;
  const float *W = l->params;
  float *dW = p->weight_grads_onto ? p->weight_grads_onto + l->param_offset : l->grads;
  float *db = l->grads + (size_t)out * in;
  /* dW (out, in) += dy^T (out, B) x (B, in) */
  if (p->fixed_order)
    mn_fixed_gemm(&(mn_fixed_gemm_args){.m = out,
                                        .n = in,
                                        .k = batch,
                                        .a = dy,
                                        .a_row = 1,
                                        .a_k = (size_t)out,
                                        .b = x,
                                        .b_k = (size_t)in,
                                        .b_panel = MN_FIXED_NR,
                                        .c = dW,
                                        .ldc = (size_t)in,
                                        .add = true});
  else
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, batch, 1.0f, dy, out, x, in, 1.0f,
                dW, in);
  for (int i = 0; i < batch; i++) {
    const float *row = dy + (size_t)i * out;
    for (int j = 0; j < out; j++) db[j] += row[j];
  }
  /* dx (B, in) = dy (B, out) W (out, in) */
  if (dx && p->fixed_order)
    mn_fixed_gemm(&(mn_fixed_gemm_args){.m = batch,
                                        .n = in,
                                        .k = out,
                                        .a = dy,
                                        .a_row = (size_t)out,
                                        .a_k = 1,
                                        .b = W,
                                        .b_k = (size_t)in,
                                        .b_panel = MN_FIXED_NR,
                                        .c = dx,
                                        .ldc = (size_t)in});
  else if (dx)
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
    .destroy = dense_destroy,
    .fixed_setup = dense_fixed_setup,
    .fixed_refresh = dense_fixed_refresh,
};
