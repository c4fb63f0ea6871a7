/* conv2d.c: 2-D convolution by im2col + SGEMM, one sample at a time.
 *
 * Each sample's image is first copied into a buffer with a zero border as wide as the
 * padding (the border is written once, at allocation). Every row of its patch matrix is then
 * a plain copy of OW floats per output row, with no bounds checks and no zero fills; the
 * input gradient is accumulated the same way into a bordered buffer and its inside copied
 * out. One GEMM per sample in both directions: measured against OpenBLAS on this layer's
 * shapes, grouping samples into longer GEMMs was never faster (for a 1-channel first layer,
 * whose weight gradient is 32x25, it halved the rate), and it needed a reshuffle of dy.
 *
 * in x (B, C, H, W) -> out y (B, F, OH, OW); W (F, C, KH, KW), b (F).
 * Keys: filters, size (K or KH,KW), stride (1), padding (valid = 0 | same | N), init,
 * bias (true; false: y = W * x alone, no b tensor).
 * "same" pads so that OH = ceil(H / stride), extra padding going to the bottom/right as in
 * TensorFlow: the bordered buffer spans what the windows cover, (OH-1)*stride + KH rows. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

enum { SLACK = 8 }; /* floats past the end of col and xpad that im2col may touch */

typedef struct {
  int filters, kh, kw, stride, pad_h, pad_w;
  bool bias; /* bias = false: no b (a batch norm after the layer has its own shift) */
  int c, h, w, oh, ow;
  int hp, wp;     /* the bordered image: what the windows cover */
  int rows, cols; /* the part of the image inside it (all of it unless a stride skips the end) */
  float *col;     /* (C*KH*KW, OH*OW): one sample's patches, reused */
  float *xpad;    /* (C, HP, WP): one input image inside its zero border */
  float *dpad;    /* (C, HP, WP): one sample's input gradient, border included */
} conv2d;

static int parse_pair(const char *s, int *a, int *b) {
  char tail;
  if (sscanf(s, "%d , %d %c", a, b, &tail) == 2) return 0;
  if (sscanf(s, "%d %c", a, &tail) == 1) {
    *b = *a;
    return 0;
  }
  return -1;
}

static int conv_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  char where[700];
  mn_layer_where(cfg, where, sizeof where);
  if (l->in.rank != 3)
    return mn_layer_shape_error(cfg, l, err,
                                "conv2d needs (C, H, W) samples (put a reshape "
                                "layer before it)");
  conv2d *c = calloc(1, sizeof *c);
  if (!c) return mn_fail(err, "out of memory");
  l->priv = c;
  long filters, stride;
  const char *size, *padding;
  if (!mn_cfg_has(cfg, "filters") || !mn_cfg_has(cfg, "size"))
    return mn_fail(err, "%s: conv2d needs 'filters' and 'size'", where);
  if (mn_cfg_int(cfg, "filters", 0, 1, 1 << 16, &filters, err) != 0 ||
      mn_cfg_string(cfg, "size", NULL, &size, err) != 0 ||
      mn_cfg_int(cfg, "stride", 1, 1, 1 << 10, &stride, err) != 0 ||
      mn_cfg_string(cfg, "padding", "valid", &padding, err) != 0 ||
      mn_cfg_bool(cfg, "bias", true, &c->bias, err) != 0 || mn_layer_parse_init(l, cfg, err) != 0)
    return -1;
  if (parse_pair(size, &c->kh, &c->kw) != 0 || c->kh < 1 || c->kw < 1)
    return mn_fail(err, "%s: size '%s' is not K or KH,KW", where, size);
  c->filters = (int)filters;
  c->stride = (int)stride;
  c->c = l->in.dim[0], c->h = l->in.dim[1], c->w = l->in.dim[2];
  if (strcmp(padding, "same") == 0) {
    c->oh = (c->h + c->stride - 1) / c->stride;
    c->ow = (c->w + c->stride - 1) / c->stride;
    int th = (c->oh - 1) * c->stride + c->kh - c->h, tw = (c->ow - 1) * c->stride + c->kw - c->w;
    c->pad_h = th > 0 ? th / 2 : 0;
    c->pad_w = tw > 0 ? tw / 2 : 0;
  } else {
    int pad = 0;
    char tail;
    if (strcmp(padding, "valid") != 0 && (sscanf(padding, "%d %c", &pad, &tail) != 1 || pad < 0))
      return mn_fail(err, "%s: padding '%s' is not valid, same or a number", where, padding);
    c->pad_h = c->pad_w = pad;
    if (c->kh > c->h + 2 * pad || c->kw > c->w + 2 * pad)
      return mn_layer_shape_error(cfg, l, err, "kernel %dx%d is larger than the padded input %dx%d",
                                  c->kh, c->kw, c->h + 2 * pad, c->w + 2 * pad);
    c->oh = (c->h + 2 * pad - c->kh) / c->stride + 1;
    c->ow = (c->w + 2 * pad - c->kw) / c->stride + 1;
  }
  l->out = (mn_shape){3, {c->filters, c->oh, c->ow}};
  l->nparams = (size_t)c->filters * c->c * c->kh * c->kw + (c->bias ? (size_t)c->filters : 0);
  return 0;
}

static int conv_alloc(mn_layer *l, int max_batch, mn_err *err) {
  conv2d *c = l->priv;
  const size_t k = (size_t)c->c * c->kh * c->kw, p = (size_t)c->oh * c->ow;
  c->hp = (c->oh - 1) * c->stride + c->kh;
  c->wp = (c->ow - 1) * c->stride + c->kw;
  c->rows = c->h < c->hp - c->pad_h ? c->h : c->hp - c->pad_h;
  c->cols = c->w < c->wp - c->pad_w ? c->w : c->wp - c->pad_w;
  if (c->rows < 0) c->rows = 0;
  if (c->cols < 0) c->cols = 0;
  const size_t padded = (size_t)c->c * c->hp * c->wp;
  c->col = mn_alloc(k * p + SLACK, sizeof(float), "conv2d", err);
  c->xpad = c->col ? mn_alloc(padded + SLACK, sizeof(float), "conv2d", err) : NULL;
  c->dpad = c->xpad ? mn_alloc(padded, sizeof(float), "conv2d", err) : NULL;
  if (!c->dpad) return -1;
  memset(c->xpad, 0, (padded + SLACK) * sizeof(float));
  return 0;
}

static void conv_destroy(mn_layer *l) {
  conv2d *c = l->priv;
  if (c) free(c->col), free(c->xpad), free(c->dpad);
  free(c);
}

static void conv_init(mn_layer *l, uint64_t seed) {
  conv2d *c = l->priv;
  size_t k = (size_t)c->c * c->kh * c->kw, nw = (size_t)c->filters * k;
  mn_init_weights(l->params, nw, l->init_kind, l->act, l->alpha, k,
                  (size_t)c->filters * c->kh * c->kw, seed, l->index);
  if (c->bias) memset(l->params + nw, 0, (size_t)c->filters * sizeof(float));
}

/* The loops below copy one output row (OW floats) at a time. GCC would turn each into a call
 * to memcpy, which for rows this short costs more than the copy (im2col took 3x as long);
 * CMakeLists.txt builds this file with -fno-tree-loop-distribute-patterns. */

/* col[(ci*KH + ki)*KW + kj][oh*OW + ow] = x[ci][oh*s - ph + ki][ow*s - pw + kj], or 0 in the
 * padding: x goes into the middle of xpad, whose border is zero, and each patch row is read
 * off xpad with no bounds to check. With stride 1 the rows go in blocks of 8 floats (two
 * vector moves) in ascending order, each block's overrun past a row's end being rewritten
 * by the next row; col and xpad have SLACK floats beyond their ends for the last one. */
static void im2col(const conv2d *c, const float *restrict x, float *restrict col) {
  const int s = c->stride, ow_n = c->ow, p = c->oh * c->ow;
  for (int ci = 0; ci < c->c; ci++)
    for (int ih = 0; ih < c->rows; ih++) {
      const float *restrict src = x + ((size_t)ci * c->h + ih) * c->w;
      float *restrict dst = c->xpad + ((size_t)ci * c->hp + ih + c->pad_h) * c->wp + c->pad_w;
      for (int iw = 0; iw < c->cols; iw++) dst[iw] = src[iw];
    }
  for (int ci = 0; ci < c->c; ci++)
    for (int ki = 0; ki < c->kh; ki++)
      for (int kj = 0; kj < c->kw; kj++) {
        float *restrict dst = col + (size_t)((ci * c->kh + ki) * c->kw + kj) * p;
        const float *restrict src = c->xpad + ((size_t)ci * c->hp + ki) * c->wp + kj;
        for (int oh = 0; oh < c->oh; oh++, dst += ow_n, src += (size_t)s * c->wp)
          if (s == 1) /* whole blocks of 8: the overrun is rewritten by the next row */
            for (int ow = 0; ow < ow_n; ow += 8) memcpy(dst + ow, src + ow, 8 * sizeof(float));
          else
            for (int ow = 0; ow < ow_n; ow++) dst[ow] = src[ow * s];
      }
}

/* The adjoint of im2col: dx = the sum of the patch gradients over the windows, into dx
 * (overwritten). Each dx value sums its windows' terms in (ki, kj) order. */
static void col2im(const conv2d *c, const float *restrict col, float *restrict dx) {
  const int s = c->stride, ow_n = c->ow, p = c->oh * c->ow;
  memset(c->dpad, 0, (size_t)c->c * c->hp * c->wp * sizeof(float));
  for (int ci = 0; ci < c->c; ci++)
    for (int ki = 0; ki < c->kh; ki++)
      for (int kj = 0; kj < c->kw; kj++) {
        const float *restrict src = col + (size_t)((ci * c->kh + ki) * c->kw + kj) * p;
        float *restrict dst = c->dpad + ((size_t)ci * c->hp + ki) * c->wp + kj;
        for (int oh = 0; oh < c->oh; oh++, src += ow_n, dst += (size_t)s * c->wp)
          if (s == 1)
            for (int ow = 0; ow < ow_n; ow++) dst[ow] += src[ow];
          else
            for (int ow = 0; ow < ow_n; ow++) dst[ow * s] += src[ow];
      }
  for (int ci = 0; ci < c->c; ci++)
    for (int ih = 0; ih < c->h; ih++) {
      float *restrict out = dx + ((size_t)ci * c->h + ih) * c->w;
      const float *restrict in = c->dpad + ((size_t)ci * c->hp + ih + c->pad_h) * c->wp + c->pad_w;
      const int cols = ih < c->rows ? c->cols : 0; /* the rest no window reads */
      for (int iw = 0; iw < cols; iw++) out[iw] = in[iw];
      for (int iw = cols; iw < c->w; iw++) out[iw] = 0.0f;
    }
}

/* The sum of x[0..n) in eight interleaved partial sums: one running sum is a chain of
 * dependent additions (4 cycles each), which made conv1's bias gradient, 32 sums of 784
 * per sample, cost more than its weight gradient's GEMM. */
static float row_sum(const float *x, int n) {
  float part[8] = {0};
  int j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) part[k] += x[j + k];
  float sum =
      ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; j < n; j++) sum += x[j];
  return sum;
}

static void conv_forward(mn_layer *l, const mn_pass *pass, const float *x, float *y, int batch) {
  conv2d *c = l->priv;
  const int k = c->c * c->kh * c->kw, p = c->oh * c->ow, f = c->filters;
  const float *W = l->params, *b = l->params + (size_t)f * k;
  const size_t in_len = mn_shape_count(l->in), out_len = (size_t)f * p;
  /* Straight into the sample's (F, P) block of y, which starts as the bias: no staging
   * buffer to copy out of and no separate bias pass. */
  for (int n = 0; n < batch; n++) {
    float *yn = y + (size_t)n * out_len;
    if (c->bias)
      for (int fi = 0; fi < f; fi++)
        for (int j = 0; j < p; j++) yn[(size_t)fi * p + j] = b[fi];
    im2col(c, x + (size_t)n * in_len, c->col);
    /* y_n (F, P) (+)= W (F, K) col (K, P) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f, p, k, 1.0f, W, k, c->col, p,
                c->bias ? 1.0f : 0.0f, yn, p);
  }
}

static void conv_backward(mn_layer *l, const mn_pass *pass, const float *x, const float *y,
                          float *dy, float *dx, int batch) {
  conv2d *c = l->priv;
  const int k = c->c * c->kh * c->kw, p = c->oh * c->ow, f = c->filters;
  const float *W = l->params;
  float *dW = l->grads, *db = l->grads + (size_t)f * k;
  const size_t in_len = mn_shape_count(l->in), out_len = (size_t)f * p;
  /* mn_pass.fresh_grads: the first sample's sums replace what the slice held */
  if (pass->fresh_grads && batch <= 0) memset(l->grads, 0, l->nparams * sizeof(float));
  for (int n = 0; n < batch; n++) {
    const float *dyn = dy + (size_t)n * out_len;
    const bool store = pass->fresh_grads && n == 0;
    for (int fi = 0; c->bias && fi < f; fi++)
      db[fi] = (store ? 0.0f : db[fi]) + row_sum(dyn + (size_t)fi * p, p);
    im2col(c, x + (size_t)n * in_len, c->col);
    /* dW (F, K) [+]= dy_n (F, P) col^T (P, K) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, f, k, p, 1.0f, dyn, p, c->col, p,
                store ? 0.0f : 1.0f, dW, k);
    if (!dx) continue;
    /* dcol (K, P) = W^T (K, F) dy_n (F, P), into the patch buffer, then back onto the image */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, p, f, 1.0f, W, k, dyn, p, 0.0f, c->col,
                p);
    col2im(c, c->col, dx + (size_t)n * in_len);
  }
}

static int conv_tensors(const mn_layer *l, mn_tensor_info *t, int max) {
  const conv2d *c = l->priv;
  size_t f = (size_t)c->filters, k = (size_t)c->c * c->kh * c->kw;
  if (max < 2) return 0;
  t[0] = (mn_tensor_info){
      .name = "W", .rank = 4, .dim = {f, (size_t)c->c, (size_t)c->kh, (size_t)c->kw}};
  if (!c->bias) return 1;
  t[1] = (mn_tensor_info){.name = "b", .rank = 1, .dim = {f}, .offset = f * k};
  return 2;
}

const mn_layer_ops mn_conv2d_ops = {
    .type = "conv2d",
    .configure = conv_configure,
    .alloc = conv_alloc,
    .destroy = conv_destroy,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
    .tensors = conv_tensors,
    .backward_skips_y = true,
    .backward_stores_grads = true,
    .per_sample = true,
};
