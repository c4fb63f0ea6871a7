/* rnn.c: the simple (Elman) recurrent layer with tanh, trained by backpropagation through time.
 *
 * in x (B, T, F) -> out (B, H) (the last hidden state) or (B, T, H) with
 * return_sequences = true.  h_t = tanh(x_t Wx^T + h_{t-1} Wh^T + b), h_{-1} = 0.
 * Params Wx (H, F), Wh (H, H), b (H). Keys: units, return_sequences, init.
 * Every time step is one SGEMM over the whole batch (x_t is read with a row stride of T*F). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recurrent.h"

typedef struct {
  int t, f, h;
  bool sequences;
  float *hs; /* (max_batch, T, H): every hidden state of the last forward */
  float *dh; /* (max_batch, H): gradient flowing to the previous step */
  float *dz; /* (max_batch, H) */
} rnn;

int mn_recurrent_configure(mn_layer *l, mn_cfg_section *cfg, int gates, int *t, int *f, int *h,
                           bool *sequences, mn_err *err) {
  if (l->in.rank != 2)
    return mn_layer_shape_error(cfg, l, err,
                                "%s needs (T, features) sequences (reshape images "
                                "to rows first)",
                                l->ops->type);
  long units;
  char where[700];
  mn_layer_where(cfg, where, sizeof where);
  if (!mn_cfg_has(cfg, "units")) return mn_fail(err, "%s: %s needs 'units'", where, l->ops->type);
  if (mn_cfg_int(cfg, "units", 0, 1, 1 << 16, &units, err) != 0 ||
      mn_cfg_bool(cfg, "return_sequences", false, sequences, err) != 0 ||
      mn_layer_parse_init(l, cfg, err) != 0)
    return -1;
  *t = l->in.dim[0], *f = l->in.dim[1], *h = (int)units;
  l->out = *sequences ? (mn_shape){2, {*t, *h}} : (mn_shape){1, {*h}};
  const size_t g = (size_t)gates * (size_t)*h;
  l->nparams = g * (size_t)*f + g * (size_t)*h + g;
  return 0;
}

static int rnn_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  rnn *r = calloc(1, sizeof *r);
  if (!r) return mn_fail(err, "out of memory");
  l->priv = r;
  return mn_recurrent_configure(l, cfg, 1, &r->t, &r->f, &r->h, &r->sequences, err);
}

static int rnn_alloc(mn_layer *l, int max_batch, mn_err *err) {
  rnn *r = l->priv;
  r->hs = mn_alloc((size_t)max_batch * r->t * r->h, sizeof(float), "rnn", err);
  r->dh = mn_alloc((size_t)max_batch * r->h, sizeof(float), "rnn", err);
  r->dz = mn_alloc((size_t)max_batch * r->h, sizeof(float), "rnn", err);
  return r->hs && r->dh && r->dz ? 0 : -1;
}

static void rnn_destroy(mn_layer *l) {
  rnn *r = l->priv;
  if (r) free(r->hs), free(r->dh), free(r->dz);
  free(r);
}

static void rnn_init(mn_layer *l, uint64_t seed) {
  rnn *r = l->priv;
  const size_t h = (size_t)r->h, f = (size_t)r->f;
  mn_init_weights(l->params, h * f, l->init_kind, MN_ACT_TANH, 0.0f, f, h, seed, l->index);
  mn_init_weights(l->params + h * f, h * h, l->init_kind, MN_ACT_TANH, 0.0f, h, h, seed,
                  l->index + 1000);
  memset(l->params + h * f + h * h, 0, h * sizeof(float));
}

static void rnn_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  rnn *r = l->priv;
  const int T = r->t, F = r->f, H = r->h;
  const float *Wx = l->params, *Wh = Wx + (size_t)H * F, *b = Wh + (size_t)H * H;
  for (int t = 0; t < T; t++) {
    float *ht = r->hs + (size_t)t * H; /* row n at ht + n*T*H */
    for (int n = 0; n < batch; n++) memcpy(ht + (size_t)n * T * H, b, (size_t)H * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, H, F, 1.0f, x + (size_t)t * F,
                T * F, Wx, F, 1.0f, ht, T * H);
    if (t > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, H, H, 1.0f, ht - H, T * H, Wh, H,
                  1.0f, ht, T * H);
    for (int n = 0; n < batch; n++) {
      float *row = ht + (size_t)n * T * H;
      for (int j = 0; j < H; j++) row[j] = tanhf(row[j]);
    }
  }
  if (r->sequences)
    memcpy(y, r->hs, (size_t)batch * T * H * sizeof(float));
  else
    for (int n = 0; n < batch; n++)
      memcpy(y + (size_t)n * H, r->hs + ((size_t)n * T + T - 1) * H, (size_t)H * sizeof(float));
}

static void rnn_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y, float *dy,
                         float *dx, int batch) {
  rnn *r = l->priv;
  const int T = r->t, F = r->f, H = r->h;
  const float *Wx = l->params, *Wh = Wx + (size_t)H * F;
  float *dWx = l->grads, *dWh = dWx + (size_t)H * F, *db = dWh + (size_t)H * H;
  memset(r->dh, 0, (size_t)batch * H * sizeof(float));
  for (int t = T - 1; t >= 0; t--) {
    const float *ht = r->hs + (size_t)t * H;
    for (int n = 0; n < batch; n++) {
      const float *g =
          r->sequences ? dy + ((size_t)n * T + t) * H : (t == T - 1 ? dy + (size_t)n * H : NULL);
      const float *hn = ht + (size_t)n * T * H;
      float *dz = r->dz + (size_t)n * H, *dh = r->dh + (size_t)n * H;
      for (int j = 0; j < H; j++) {
        float d = dh[j] + (g ? g[j] : 0.0f);
        dz[j] = d * (1.0f - hn[j] * hn[j]);
        db[j] += dz[j];
      }
    }
    /* dWx += dz^T x_t ; dWh += dz^T h_{t-1} */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, F, batch, 1.0f, r->dz, H,
                x + (size_t)t * F, T * F, 1.0f, dWx, F);
    if (t > 0)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, H, batch, 1.0f, r->dz, H, ht - H,
                  T * H, 1.0f, dWh, H);
    if (dx)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, F, H, 1.0f, r->dz, H, Wx, F,
                  0.0f, dx + (size_t)t * F, T * F);
    /* the gradient reaching h_{t-1} */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, H, H, 1.0f, r->dz, H, Wh, H, 0.0f,
                r->dh, H);
  }
}

static int rnn_tensors(const mn_layer *l, mn_tensor_info *t, int max) {
  const rnn *r = l->priv;
  const size_t h = (size_t)r->h, f = (size_t)r->f;
  if (max < 3) return 0;
  t[0] = (mn_tensor_info){.name = "Wx", .rank = 2, .dim = {h, f}};
  t[1] = (mn_tensor_info){.name = "Wh", .rank = 2, .dim = {h, h}, .offset = h * f};
  t[2] = (mn_tensor_info){.name = "b", .rank = 1, .dim = {h}, .offset = h * f + h * h};
  return 3;
}

const mn_layer_ops mn_rnn_ops = {
    .type = "rnn",
    .configure = rnn_configure,
    .alloc = rnn_alloc,
    .destroy = rnn_destroy,
    .init = rnn_init,
    .forward = rnn_forward,
    .backward = rnn_backward,
    .tensors = rnn_tensors,
};
