/* dense.c: the fully connected layer, y = x W^T + b, on OpenBLAS SGEMM (the network applies
 * the activation); in fixed passes (mn_pass.fixed) on the fixed-sum GEMM (fixed_gemm.h), through a
 * copy of W packed once per step, with the weight gradient deferred to the last part
 * (mn_fixed_pass.parts): one GEMM over all of the step's rows instead of one per micro-batch.
 *
 * in x (B, in) -> out y (B, units); W (units, in) as in PyTorch's nn.Linear; b (units).
 * Inputs of any shape are flattened per sample. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixed_gemm.h"
#include "gemm.h"
#include "layer.h"

/* l->priv, from fixed_setup on (NULL until then) */
typedef struct {
  float *packed; /* W^T packed for the fixed-sum GEMM: the forward's b operand */
  float *wk;     /* W in panels, dx's b operand (layers after the first; else NULL) */
  /* deferral (else NULL): every part's x as the weight gradient's b operand in panels
   * (mn_fixed_pack_rows), and dy transposed, (out, rows), so that both stream in order */
  float *xs, *dyt;
  int rows; /* parts x part_rows */
} dense_fixed;

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
  mn_init_weights(l->params, out * in, l->init_kind, l->act, l->alpha, in, out, seed, l->index);
  memset(l->params + out * in, 0, out * sizeof(float));
}

static void dense_destroy(mn_layer *l) {
  dense_fixed *f = l->priv;
  if (f) free(f->packed), free(f->wk), free(f->xs), free(f->dyt), free(f);
  l->priv = NULL;
}

static int dense_fixed_setup(mn_layer *l, int part_rows, int parts, mn_err *err) {
  const size_t in = mn_shape_count(l->in), out = (size_t)l->units;
  const size_t rows = (size_t)part_rows * (size_t)(parts > 1 ? parts : 0);
  dense_destroy(l);
  dense_fixed *f = mn_alloc(1, sizeof *f, "dense layer", err);
  if (!f) return -1;
  l->priv = f;
  f->rows = (int)rows;
  f->packed =
      mn_alloc(mn_fixed_packed_size(l->units, (int)in), sizeof(float), "packed dense weights", err);
  if (!f->packed) return -1;
  if (l->index > 0) { /* the first layer has no dx to compute */
    f->wk = mn_alloc(mn_fixed_packed_size((int)in, (int)out), sizeof(float), "packed dense weights",
                     err);
    if (!f->wk) return -1;
  }
  if (rows > 0) { /* one part computes its weight gradient straight from x and dy */
    f->xs = mn_alloc(mn_fixed_packed_size((int)in, (int)rows), sizeof(float),
                     "dense layer inputs of a step", err);
    f->dyt = mn_alloc(rows * out, sizeof(float), "dense layer gradients of a step", err);
    if (!f->xs || !f->dyt) return -1;
  }
  l->fixed_deferred = parts > 0 ? out * in : 0;
  return 0;
}

static void dense_fixed_refresh(mn_layer *l) {
  const dense_fixed *f = l->priv;
  if (!f) return;
  const int in = (int)mn_shape_count(l->in), out = l->units;
  mn_fixed_pack(out, in, l->params, f->packed);
  /* a copy in panels: dx's GEMM then streams W in order instead of one line per page */
  if (f->wk) mn_fixed_pack_rows(out, in, l->params, out, 0, f->wk);
}

static void dense_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  const int in = (int)mn_shape_count(l->in), out = l->units;
  const float *W = l->params, *b = l->params + (size_t)out * in;
  const dense_fixed *f = l->priv;
  /* Start from the bias, then one GEMM adds x W^T (and applies the ReLU, act_by_layer). */
  for (int i = 0; i < batch; i++) memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
  if (p->fixed.on && f) {
    mn_fixed_gemm_args g = mn_fixed_view(batch, out, in, x, (size_t)in, 1, f->packed, MN_FIXED_NR,
                                         (size_t)MN_FIXED_NR * (size_t)in, y, (size_t)out);
    g.add = true;
    mn_fixed_gemm(&g);
    if (l->act_by_layer) mn_activation_forward(MN_ACT_RELU, 0.0f, y, (size_t)batch, (size_t)out);
  } else { /* rows of x against rows of W: no copy of W^T, unlike cblas_sgemm (gemm.h) */
    mn_gemm_nt(batch, out, in, x, (size_t)in, W, (size_t)in, y, (size_t)out, l->act_by_layer);
  }
}

/* dW (out, in) [+]= dy^T (out, B) x (B, in) on the fixed-sum GEMM, for one part's dy and x. */
static void fixed_weight_grad(const mn_layer *l, const float *dy, const float *x, int batch,
                              float *dW, bool add) {
  const int in = (int)mn_shape_count(l->in), out = l->units;
  mn_fixed_gemm_args g =
      mn_fixed_view(out, in, batch, dy, 1, (size_t)out, x, (size_t)in, MN_FIXED_NR, dW, (size_t)in);
  g.add = add;
  mn_fixed_gemm(&g);
}

/* Deferral: keeps this part's x and dy; the last part writes dW as the tree of the parts'
 * sums, from the packed copies (the same chains as fixed_weight_grad's, in another layout). */
static void deferred_weight_grad(const mn_layer *l, const mn_pass *p, const float *dy,
                                 const float *x, int batch) {
  const int in = (int)mn_shape_count(l->in), out = l->units;
  const dense_fixed *f = l->priv;
  const int at = p->fixed.part * batch;
  mn_fixed_pack_rows(batch, in, x, f->rows, at, f->xs);
  for (int j = 0; j < out; j++) { /* writes in order; the part's rows of dy stay in L1 */
    float *row = f->dyt + (size_t)j * (size_t)f->rows + (size_t)at;
    for (int r = 0; r < batch; r++) row[r] = dy[(size_t)r * (size_t)out + j];
  }
  if (p->fixed.part < p->fixed.parts - 1) return;
  mn_fixed_gemm_args g = mn_fixed_view(out, in, f->rows, f->dyt, (size_t)f->rows, 1, f->xs,
                                       MN_FIXED_NR, (size_t)MN_FIXED_NR * (size_t)f->rows,
                                       p->fixed.deferred_grads + l->param_offset, (size_t)in);
  g.parts = p->fixed.parts;
  mn_fixed_gemm(&g);
}

static void dense_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y, float *dy,
                           float *dx, int batch) {
  const int in = (int)mn_shape_count(l->in), out = l->units;
  const float *W = l->params;
  float *db = l->grads + (size_t)out * in;
  /* dW (out, in) += dy^T (out, B) x (B, in); = with mn_pass.fresh_grads (and db likewise).
   * When a listener can start on them (mn_pass_grad_blocks: the ranks' sum), a large dW
   * goes in up to that many blocks of rows, each announced as soon as it is final: a rank
   * that finished backward early sums those blocks while this one computes the next, instead
   * of all of this layer after it (the MLP's first layer is 85% of its gradient). */
  const size_t most = (size_t)mn_pass_grad_blocks(p);
  int blocks = (int)((size_t)out * in / 32768 < most ? (size_t)out * in / 32768 : most);
  if (blocks < 1 || out < blocks) blocks = 1;
  /* Each block is announced with what its GEMM found: all finite, or not known (then the
   * listener scans it); the bias is the network's to announce, after this backward. */
  if (!p->fixed.on) {
    /* block k holds blocks - k parts of blocks * (blocks + 1) / 2: the last is the smallest,
     * so the least is left to add once the last rank has computed it (1 block: the whole) */
    const int parts = blocks * (blocks + 1) / 2;
    for (int k = 0, done = 0; k < blocks; done += blocks - k, k++) {
      const int o0 = out * done / parts, o1 = out * (done + blocks - k) / parts;
      const bool finite = mn_gemm_nn(o1 - o0, in, batch, dy + o0, 1, (size_t)out, x, (size_t)in,
                                     l->grads + (size_t)o0 * in, (size_t)in, !p->fresh_grads);
      const size_t from = l->param_offset + (size_t)o0 * in,
                   upto = l->param_offset + (size_t)o1 * in;
      mn_pass_grads_ready(p, upto, finite ? from : upto);
    }
  } else if (p->fixed.parts == 0) { /* no deferral: this part's gradient onto the slice */
    fixed_weight_grad(l, dy, x, batch, l->grads, true);
  } else if (p->fixed.parts == 1) { /* the only part: its sum is the tree's */
    fixed_weight_grad(l, dy, x, batch, p->fixed.deferred_grads + l->param_offset, false);
  } else {
    deferred_weight_grad(l, p, dy, x, batch);
  }
  if (p->fresh_grads) memset(db, 0, (size_t)out * sizeof(float));
  for (int i = 0; i < batch; i++) {
    const float *row = dy + (size_t)i * out;
    for (int j = 0; j < out; j++) db[j] += row[j];
  }
  /* dx (B, in) = dy (B, out) W (out, in) */
  if (dx && p->fixed.on) {
    const dense_fixed *f = l->priv;
    const bool panels = f && f->wk; /* the same values either way, in another layout */
    const mn_fixed_gemm_args g = mn_fixed_view(
        batch, in, out, dy, (size_t)out, 1, panels ? f->wk : W, panels ? MN_FIXED_NR : (size_t)in,
        panels ? (size_t)MN_FIXED_NR * (size_t)out : MN_FIXED_NR, dx, (size_t)in);
    mn_fixed_gemm(&g);
  } else if (dx) {
    mn_gemm_nn(batch, in, out, dy, (size_t)out, 1, W, (size_t)in, dx, (size_t)in, false);
  }
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
    .backward_skips_y = true,
    .backward_stores_grads = true,
    .forward_applies_relu = true,
};
