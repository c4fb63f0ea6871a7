/* lstm.c: long short-term memory (Hochreiter & Schmidhuber 1997), trained by BPTT.
 *
 * in x (B, T, F) -> out (B, H) (the last hidden state) or (B, T, H) with
 * return_sequences = true. Gates in the order i, f, g, o (as PyTorch):
 *   z = x_t Wx^T + h_{t-1} Wh^T + b          (B, 4H)
 *   i = s(z_i), f = s(z_f), g = tanh(z_g), o = s(z_o)
 *   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t),  h_{-1} = c_{-1} = 0
 * Params Wx (4H, F), Wh (4H, H), b (4H); the forget-gate bias starts at 1 so early training
 * remembers. Keys: units, return_sequences, init. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recurrent.h"

typedef struct {
  int t, f, h;
  bool sequences;
  float *gates;   /* (max_batch, T, 4H): activated gates i, f, g, o of every step */
  float *cs;      /* (max_batch, T, H): cell states */
  float *hs;      /* (max_batch, T, H): hidden states */
  float *dh, *dc; /* (max_batch, H): gradients flowing to the previous step */
  float *dz;      /* (max_batch, 4H) */
} lstm;

static float sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

static int lstm_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  lstm *s = calloc(1, sizeof *s);
  if (!s) return mn_fail(err, "out of memory");
  l->priv = s;
  return mn_recurrent_configure(l, cfg, 4, &s->t, &s->f, &s->h, &s->sequences, err);
}

static int lstm_alloc(mn_layer *l, int max_batch, mn_err *err) {
  lstm *s = l->priv;
  const size_t bt = (size_t)max_batch * s->t, bh = (size_t)max_batch * s->h;
  s->gates = mn_alloc(bt * 4 * s->h, sizeof(float), "lstm", err);
  s->cs = mn_alloc(bt * s->h, sizeof(float), "lstm", err);
  s->hs = mn_alloc(bt * s->h, sizeof(float), "lstm", err);
  s->dh = mn_alloc(bh, sizeof(float), "lstm", err);
  s->dc = mn_alloc(bh, sizeof(float), "lstm", err);
  s->dz = mn_alloc(4 * bh, sizeof(float), "lstm", err);
  return s->gates && s->cs && s->hs && s->dh && s->dc && s->dz ? 0 : -1;
}

static void lstm_destroy(mn_layer *l) {
  lstm *s = l->priv;
  if (s) free(s->gates), free(s->cs), free(s->hs), free(s->dh), free(s->dc), free(s->dz);
  free(s);
}

static void lstm_init(mn_layer *l, uint64_t seed) {
  lstm *s = l->priv;
  const size_t h = (size_t)s->h, f = (size_t)s->f, g = 4 * h;
  mn_init_weights(l->params, g * f, l->init_kind, MN_ACT_TANH, 0.0f, f, h, seed, l->index);
  mn_init_weights(l->params + g * f, g * h, l->init_kind, MN_ACT_TANH, 0.0f, h, h, seed,
                  l->index + 1000);
  float *b = l->params + g * f + g * h;
  for (size_t j = 0; j < g; j++) b[j] = j >= h && j < 2 * h ? 1.0f : 0.0f;
}

static void lstm_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  lstm *s = l->priv;
  const int T = s->t, F = s->f, H = s->h, G = 4 * H;
  const float *Wx = l->params, *Wh = Wx + (size_t)G * F, *b = Wh + (size_t)G * H;
  for (int t = 0; t < T; t++) {
    float *zt = s->gates + (size_t)t * G; /* row n at zt + n*T*G */
    for (int n = 0; n < batch; n++) memcpy(zt + (size_t)n * T * G, b, (size_t)G * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, G, F, 1.0f, x + (size_t)t * F,
                T * F, Wx, F, 1.0f, zt, T * G);
    if (t > 0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, G, H, 1.0f,
                  s->hs + (size_t)(t - 1) * H, T * H, Wh, H, 1.0f, zt, T * G);
    for (int n = 0; n < batch; n++) {
      float *z = zt + (size_t)n * T * G;
      const size_t at = ((size_t)n * T + t) * H;
      const float *cprev = t > 0 ? s->cs + at - H : NULL;
      for (int j = 0; j < H; j++) {
        const float i = sigmoid(z[j]), f = sigmoid(z[H + j]), g = tanhf(z[2 * H + j]),
                    o = sigmoid(z[3 * H + j]);
        z[j] = i, z[H + j] = f, z[2 * H + j] = g, z[3 * H + j] = o;
        const float c = (cprev ? f * cprev[j] : 0.0f) + i * g;
        s->cs[at + j] = c;
        s->hs[at + j] = o * tanhf(c);
      }
    }
  }
  if (s->sequences)
    memcpy(y, s->hs, (size_t)batch * T * H * sizeof(float));
  else
    for (int n = 0; n < batch; n++)
      memcpy(y + (size_t)n * H, s->hs + ((size_t)n * T + T - 1) * H, (size_t)H * sizeof(float));
}

static void lstm_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y, float *dy,
                          float *dx, int batch) {
  lstm *s = l->priv;
  const int T = s->t, F = s->f, H = s->h, G = 4 * H;
  const float *Wx = l->params, *Wh = Wx + (size_t)G * F;
  float *dWx = l->grads, *dWh = dWx + (size_t)G * F, *db = dWh + (size_t)G * H;
  memset(s->dh, 0, (size_t)batch * H * sizeof(float));
  memset(s->dc, 0, (size_t)batch * H * sizeof(float));
  for (int t = T - 1; t >= 0; t--) {
    for (int n = 0; n < batch; n++) {
      const float *gin =
          s->sequences ? dy + ((size_t)n * T + t) * H : (t == T - 1 ? dy + (size_t)n * H : NULL);
      const float *z = s->gates + ((size_t)n * T + t) * G;
      const size_t at = ((size_t)n * T + t) * H;
      float *dh = s->dh + (size_t)n * H, *dc = s->dc + (size_t)n * H, *dz = s->dz + (size_t)n * G;
      for (int j = 0; j < H; j++) {
        const float i = z[j], f = z[H + j], g = z[2 * H + j], o = z[3 * H + j];
        const float tc = tanhf(s->cs[at + j]);
        const float cprev = t > 0 ? s->cs[at - H + j] : 0.0f;
        const float dhj = dh[j] + (gin ? gin[j] : 0.0f);
        const float dcj = dc[j] + dhj * o * (1.0f - tc * tc);
        dz[j] = dcj * g * i * (1.0f - i);
        dz[H + j] = dcj * cprev * f * (1.0f - f);
        dz[2 * H + j] = dcj * i * (1.0f - g * g);
        dz[3 * H + j] = dhj * tc * o * (1.0f - o);
        dc[j] = dcj * f; /* to c_{t-1} */
      }
      for (int j = 0; j < G; j++) db[j] += dz[j];
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, F, batch, 1.0f, s->dz, G,
                x + (size_t)t * F, T * F, 1.0f, dWx, F);
    if (t > 0)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, batch, 1.0f, s->dz, G,
                  s->hs + (size_t)(t - 1) * H, T * H, 1.0f, dWh, H);
    if (dx)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, F, G, 1.0f, s->dz, G, Wx, F,
                  0.0f, dx + (size_t)t * F, T * F);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, H, G, 1.0f, s->dz, G, Wh, H, 0.0f,
                s->dh, H);
  }
}

static int lstm_tensors(const mn_layer *l, mn_tensor_info *t, int max) {
  const lstm *s = l->priv;
  const size_t h = (size_t)s->h, f = (size_t)s->f, g = 4 * h;
  if (max < 3) return 0;
  t[0] = (mn_tensor_info){.name = "Wx", .rank = 2, .dim = {g, f}};
  t[1] = (mn_tensor_info){.name = "Wh", .rank = 2, .dim = {g, h}, .offset = g * f};
  t[2] = (mn_tensor_info){.name = "b", .rank = 1, .dim = {g}, .offset = g * f + g * h};
  return 3;
}

const mn_layer_ops mn_lstm_ops = {
    .type = "lstm",
    .configure = lstm_configure,
    .alloc = lstm_alloc,
    .destroy = lstm_destroy,
    .init = lstm_init,
    .forward = lstm_forward,
    .backward = lstm_backward,
    .tensors = lstm_tensors,
};
