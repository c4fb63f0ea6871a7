/* conv2d.c: 2-D convolution by im2col + SGEMM.
 *
 * Forward is one GEMM per sample, written straight into the output. In backward the patches
 * of G samples sit side by side in one reused buffer, (C*KH*KW, G*OH*OW), so the
 * weight-gradient GEMM sums over G*OH*OW columns at once instead of one small GEMM per
 * sample. G is as large as keeps the buffer near 2 MB.
 *
 * in x (B, C, H, W) -> out y (B, F, OH, OW); W (F, C, KH, KW), b (F).
 * Keys: filters, size (K or KH,KW), stride (1), padding (valid = 0 | same | N), init.
 * "same" pads so that OH = ceil(H / stride), extra padding going to the bottom/right as in
 * TensorFlow; the im2col bounds check makes the far-side padding implicit. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
  int filters, kh, kw, stride, pad_h, pad_w;
  int c, h, w, oh, ow;
  int group;  /* samples per GEMM */
  float *col; /* (C*KH*KW, group*OH*OW): patches of a group of samples, reused */
  float *out; /* (F, group*OH*OW): outputs or output gradients of a group, reused */
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
      mn_layer_parse_init(l, cfg, err) != 0)
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
  l->nparams = (size_t)c->filters * c->c * c->kh * c->kw + (size_t)c->filters;
  return 0;
}

static int conv_alloc(mn_layer *l, int max_batch, mn_err *err) {
  conv2d *c = l->priv;
  const size_t k = (size_t)c->c * c->kh * c->kw, p = (size_t)c->oh * c->ow;
  size_t group = ((size_t)1 << 19) / (k * p); /* ~2 MB of patches per GEMM */
  c->group = group < 1 ? 1 : group > (size_t)max_batch ? max_batch : (int)group;
  c->col = mn_alloc(k * p * (size_t)c->group, sizeof(float), "conv2d", err);
  c->out = mn_alloc((size_t)c->filters * p * (size_t)c->group, sizeof(float), "conv2d", err);
  return c->col && c->out ? 0 : -1;
}

static void conv_destroy(mn_layer *l) {
  conv2d *c = l->priv;
  if (c) free(c->col), free(c->out);
  free(c);
}

static void conv_init(mn_layer *l, uint64_t seed) {
  conv2d *c = l->priv;
  size_t k = (size_t)c->c * c->kh * c->kw, nw = (size_t)c->filters * k;
  mn_init_weights(l->params, nw, l->init_kind, l->act, k, (size_t)c->filters * c->kh * c->kw, seed,
                  l->index);
  memset(l->params + nw, 0, (size_t)c->filters * sizeof(float));
}

/* The output columns ow whose input column iw = ow*stride - pad + kj lies inside the image:
 * [*lo, *hi). Outside it the patch reads padding. */
static void valid_columns(const conv2d *c, int kj, int *lo, int *hi) {
  const int first = c->pad_w - kj; /* smallest ow*stride that lands on iw >= 0 */
  *lo = first <= 0 ? 0 : (first + c->stride - 1) / c->stride;
  const int last = c->w - 1 + c->pad_w - kj; /* largest ow*stride with iw <= w - 1 */
  *hi = last < 0 ? 0 : last / c->stride + 1;
  if (*hi > c->ow) *hi = c->ow;
  if (*lo > *hi) *lo = *hi;
}

/* col[(ci*KH + ki)*KW + kj][oh*OW + ow] = x[ci][oh*s - ph + ki][ow*s - pw + kj] or 0.
 * The valid column range is computed once per kernel column, so the inner loop is a plain
 * (strided) copy with no bounds checks. */
static void im2col(const conv2d *c, const float *x, float *col, size_t ld) {
  const int s = c->stride;
  for (int ci = 0; ci < c->c; ci++)
    for (int ki = 0; ki < c->kh; ki++)
      for (int kj = 0; kj < c->kw; kj++) {
        float *row = col + (size_t)((ci * c->kh + ki) * c->kw + kj) * ld;
        int lo, hi;
        valid_columns(c, kj, &lo, &hi);
        for (int oh = 0; oh < c->oh; oh++) {
          const int ih = oh * s - c->pad_h + ki;
          float *dst = row + oh * c->ow;
          if (ih < 0 || ih >= c->h) {
            memset(dst, 0, (size_t)c->ow * sizeof(float));
            continue;
          }
          const float *src = x + ((size_t)ci * c->h + ih) * c->w + (kj - c->pad_w);
          for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
          if (s == 1)
            memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
          else
            for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow * s];
          for (int ow = hi; ow < c->ow; ow++) dst[ow] = 0.0f;
        }
      }
}

/* The adjoint of im2col: dx[ci][ih][iw] += dcol[...] (dx must start zeroed). */
static void col2im(const conv2d *c, const float *col, size_t ld, float *dx) {
  const int s = c->stride;
  for (int ci = 0; ci < c->c; ci++)
    for (int ki = 0; ki < c->kh; ki++)
      for (int kj = 0; kj < c->kw; kj++) {
        const float *row = col + (size_t)((ci * c->kh + ki) * c->kw + kj) * ld;
        int lo, hi;
        valid_columns(c, kj, &lo, &hi);
        for (int oh = 0; oh < c->oh; oh++) {
          const int ih = oh * s - c->pad_h + ki;
          if (ih < 0 || ih >= c->h) continue;
          float *dst = dx + ((size_t)ci * c->h + ih) * c->w + (kj - c->pad_w);
          const float *src = row + oh * c->ow;
          for (int ow = lo; ow < hi; ow++) dst[ow * s] += src[ow];
        }
      }
}

static void conv_forward(mn_layer *l, const mn_pass *pass, const float *x, float *y, int batch) {
  conv2d *c = l->priv;
  const int k = c->c * c->kh * c->kw, p = c->oh * c->ow, f = c->filters;
  const float *W = l->params, *b = l->params + (size_t)f * k;
  const size_t in_len = mn_shape_count(l->in), out_len = (size_t)f * p;
  /* One GEMM per sample, straight into its (F, P) block of y, which starts as the bias:
   * no staging buffer to copy out of and no separate bias pass. (Grouping samples pays in
   * backward, where it lengthens the weight gradient's sums; forward's GEMM is as long.) */
  for (int n = 0; n < batch; n++) {
    float *yn = y + (size_t)n * out_len;
    for (int fi = 0; fi < f; fi++)
      for (int j = 0; j < p; j++) yn[(size_t)fi * p + j] = b[fi];
    im2col(c, x + (size_t)n * in_len, c->col, (size_t)p);
    /* y_n (F, P) += W (F, K) col (K, P) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f, p, k, 1.0f, W, k, c->col, p, 1.0f,
                yn, p);
  }
}

static void conv_backward(mn_layer *l, const mn_pass *pass, const float *x, const float *y,
                          float *dy, float *dx, int batch) {
  conv2d *c = l->priv;
  const int k = c->c * c->kh * c->kw, p = c->oh * c->ow, f = c->filters;
  const float *W = l->params;
  float *dW = l->grads, *db = l->grads + (size_t)f * k;
  const size_t in_len = mn_shape_count(l->in), out_len = (size_t)f * p;
  for (int n0 = 0; n0 < batch; n0 += c->group) {
    const int g = batch - n0 < c->group ? batch - n0 : c->group;
    const size_t ld = (size_t)g * p;
    /* dy of the group in (F, g*P) layout; the bias gradient on the way */
    for (int i = 0; i < g; i++)
      for (int fi = 0; fi < f; fi++) {
        const float *src = dy + (size_t)(n0 + i) * out_len + (size_t)fi * p;
        float *dst = c->out + (size_t)fi * ld + (size_t)i * p;
        float sum = 0.0f;
        for (int j = 0; j < p; j++) dst[j] = src[j], sum += src[j];
        db[fi] += sum;
      }
    for (int i = 0; i < g; i++)
      im2col(c, x + (size_t)(n0 + i) * in_len, c->col + (size_t)i * p, ld);
    /* dW (F, K) += dy (F, g*P) col^T (g*P, K) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, f, k, (int)ld, 1.0f, c->out, (int)ld,
                c->col, (int)ld, 1.0f, dW, k);
    if (!dx) continue;
    /* dcol (K, g*P) = W^T (K, F) dy (F, g*P), into the patch buffer, then back onto images */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, (int)ld, f, 1.0f, W, k, c->out, (int)ld,
                0.0f, c->col, (int)ld);
    for (int i = 0; i < g; i++) {
      float *dxn = dx + (size_t)(n0 + i) * in_len;
      memset(dxn, 0, in_len * sizeof(float));
      col2im(c, c->col + (size_t)i * p, ld, dxn);
    }
  }
}

static int conv_tensors(const mn_layer *l, mn_tensor_info *t, int max) {
  const conv2d *c = l->priv;
  size_t f = (size_t)c->filters, k = (size_t)c->c * c->kh * c->kw;
  if (max < 2) return 0;
  t[0] = (mn_tensor_info){
      .name = "W", .rank = 4, .dim = {f, (size_t)c->c, (size_t)c->kh, (size_t)c->kw}};
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
};
