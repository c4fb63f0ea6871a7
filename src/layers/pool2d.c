/* pool2d.c: max and average pooling over (C, H, W) samples.
 *
 * in x (B, C, H, W) -> out y (B, C, OH, OW), OH = (H - size) / stride + 1 (windows that do
 * not fit are dropped, as in PyTorch). Keys: size (2), stride (= size).
 * Max pooling sends the gradient to the first maximum of a window in row-major order when
 * several inputs tie, the same rule PyTorch's CPU kernel follows; the index of that input is
 * kept from the forward pass. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
  bool max;
  bool two; /* 2x2 windows, stride 2: the common case, with a fast path */
  int size, stride, c, h, w, oh, ow;
  /* (max_batch, C*OH*OW): which input of its window each output's maximum is. For 2x2
   * windows one byte (row * 2 + column: a quarter of the memory and traffic of an offset);
   * otherwise the input's offset in its sample, int32. */
  void *argmax;
} pool2d;

static int pool_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err, bool max) {
  if (l->in.rank != 3) return mn_layer_shape_error(cfg, l, err, "pooling needs (C, H, W) samples");
  pool2d *p = calloc(1, sizeof *p);
  if (!p) return mn_fail(err, "out of memory");
  l->priv = p;
  long size, stride;
  if (mn_cfg_int(cfg, "size", 2, 1, 1 << 12, &size, err) != 0 ||
      mn_cfg_int(cfg, "stride", size, 1, 1 << 12, &stride, err) != 0)
    return -1;
  p->max = max;
  p->size = (int)size, p->stride = (int)stride;
  p->c = l->in.dim[0], p->h = l->in.dim[1], p->w = l->in.dim[2];
  if (p->size > p->h || p->size > p->w)
    return mn_layer_shape_error(cfg, l, err, "window %dx%d is larger than the input %dx%d", p->size,
                                p->size, p->h, p->w);
  p->two = p->size == 2 && p->stride == 2;
  p->oh = (p->h - p->size) / p->stride + 1;
  p->ow = (p->w - p->size) / p->stride + 1;
  l->out = (mn_shape){3, {p->c, p->oh, p->ow}};
  return 0;
}

static int maxpool_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  return pool_configure(l, cfg, err, true);
}

static int avgpool_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  return pool_configure(l, cfg, err, false);
}

static int pool_alloc(mn_layer *l, int max_batch, mn_err *err) {
  pool2d *p = l->priv;
  if (!p->max) return 0;
  p->argmax = mn_alloc((size_t)max_batch * mn_shape_count(l->out),
                       p->two ? sizeof(uint8_t) : sizeof(int32_t), "maxpool", err);
  return p->argmax ? 0 : -1;
}

static void pool_destroy(mn_layer *l) {
  pool2d *p = l->priv;
  if (p) free(p->argmax);
  free(p);
}

static void pool_init(mn_layer *l, uint64_t seed) {}

/* Max of one window; *arg gets the offset of its first maximum (row-major). */
static inline float window_max(const float *xc, int w, int h0, int w0, int size, int *arg) {
  float best = xc[h0 * w + w0];
  int at_best = h0 * w + w0;
  for (int i = 0; i < size; i++) {
    const float *row = xc + (h0 + i) * w + w0;
    for (int j = 0; j < size; j++)
      if (row[j] > best) best = row[j], at_best = (h0 + i) * w + w0 + j;
  }
  *arg = at_best;
  return best;
}

/* One output row of 2x2 max pooling with stride 2, from input rows r0 and r1, and each
 * window's winner (row * 2 + column). Without branches: a data-dependent branch per
 * comparison (ReLU outputs, many of them 0) mispredicted often enough to make pooling 7% of
 * a CNN step; and in vector lanes, which GCC does only with restrict and
 * -fno-trapping-math (CMakeLists.txt), as a comparison could otherwise trap. Same semantics
 * as window_max: the first maximum in row-major order wins ties, and a NaN wins only from
 * the window's first place. */
static void max2x2_row(const float *restrict r0, const float *restrict r1, float *restrict yo,
                       uint8_t *restrict ao, int n) {
  /* the winners in int lanes, then narrowed: one loop over both types ran twice as long */
  int32_t k32[64];
  for (int o0 = 0; o0 < n; o0 += 64) {
    const int m_n = n - o0 < 64 ? n - o0 : 64;
    const float *restrict a0 = r0 + 2 * o0, *restrict a1 = r1 + 2 * o0;
    float *restrict yy = yo + o0;
    for (int ow = 0; ow < m_n; ow++) {
      const float a = a0[2 * ow], b = a0[2 * ow + 1], c = a1[2 * ow], d = a1[2 * ow + 1];
      float m = a;
      int32_t k = 0;
      k = b > m ? 1 : k;
      m = b > m ? b : m;
      k = c > m ? 2 : k;
      m = c > m ? c : m;
      k = d > m ? 3 : k;
      m = d > m ? d : m;
      yy[ow] = m;
      k32[ow] = k;
    }
    for (int ow = 0; ow < m_n; ow++) ao[o0 + ow] = (uint8_t)k32[ow];
  }
}

static void max2x2_forward(const pool2d *p, const float *x, float *y, uint8_t *argmax, int batch,
                           size_t in_len, size_t out_len) {
  const int w = p->w;
  for (int n = 0; n < batch; n++)
    for (int ci = 0; ci < p->c; ci++) {
      const size_t plane = (size_t)ci * p->h * p->w;
      const float *xc = x + n * in_len + plane;
      const size_t o0 = n * out_len + (size_t)ci * p->oh * p->ow;
      for (int oh = 0; oh < p->oh; oh++) {
        const float *r0 = xc + (size_t)(2 * oh) * w, *r1 = r0 + w;
        float *yo = y + o0 + (size_t)oh * p->ow;
        if (argmax) {
          max2x2_row(r0, r1, yo, argmax + o0 + (size_t)oh * p->ow, p->ow);
          continue;
        }
        for (int ow = 0; ow < p->ow; ow++) { /* evaluation: values only */
          const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
          const float m1 = b > a ? b : a, m2 = c > m1 ? c : m1;
          yo[ow] = d > m2 ? d : m2;
        }
      }
    }
}

static void pool_forward(mn_layer *l, const mn_pass *pass, const float *x, float *y, int batch) {
  const pool2d *p = l->priv;
  const size_t in_len = mn_shape_count(l->in), out_len = mn_shape_count(l->out);
  const float inv = 1.0f / (float)(p->size * p->size);
  /* the winners are only needed by a backward pass, i.e. in training */
  void *argmax = p->max && pass->training ? p->argmax : NULL;
  if (argmax) /* rows from pass->row0 on (a streamed call) */
    argmax = (char *)argmax + (size_t)pass->row0 * out_len * (p->two ? 1 : sizeof(int32_t));
  if (p->max && p->two) {
    max2x2_forward(p, x, y, argmax, batch, in_len, out_len);
    return;
  }
  for (int n = 0; n < batch; n++)
    for (int ci = 0; ci < p->c; ci++) {
      const float *xc = x + n * in_len + (size_t)ci * p->h * p->w;
      size_t o = n * out_len + (size_t)ci * p->oh * p->ow;
      for (int oh = 0; oh < p->oh; oh++)
        for (int ow = 0; ow < p->ow; ow++, o++) {
          const int h0 = oh * p->stride, w0 = ow * p->stride;
          if (p->max) {
            int arg;
            y[o] = window_max(xc, p->w, h0, w0, p->size, &arg);
            if (argmax) ((int32_t *)argmax)[o] = (int32_t)((size_t)ci * p->h * p->w + (size_t)arg);
          } else {
            float sum = 0.0f;
            for (int i = 0; i < p->size; i++)
              for (int j = 0; j < p->size; j++) sum += xc[(h0 + i) * p->w + w0 + j];
            y[o] = sum * inv;
          }
        }
    }
}

static void pool_backward(mn_layer *l, const mn_pass *pass, const float *x, const float *y,
                          float *dy, float *dx, int batch) {
  const pool2d *p = l->priv;
  if (!dx) return;
  const size_t in_len = mn_shape_count(l->in), out_len = mn_shape_count(l->out);
  memset(dx, 0, (size_t)batch * in_len * sizeof(float));
  const float inv = 1.0f / (float)(p->size * p->size);
  for (int n = 0; n < batch; n++) {
    float *dxn = dx + n * in_len;
    const float *dyn = dy + n * out_len;
    if (p->max && p->two) {
      const uint8_t *code = (const uint8_t *)p->argmax + (pass->row0 + n) * out_len;
      for (int ci = 0, o = 0; ci < p->c; ci++)
        for (int oh = 0; oh < p->oh; oh++)
          for (int ow = 0; ow < p->ow; ow++, o++) {
            const int k = code[o];
            dxn[((size_t)ci * p->h + 2 * oh + (k >> 1)) * p->w + 2 * ow + (k & 1)] += dyn[o];
          }
      continue;
    }
    if (p->max) {
      const int32_t *arg = (const int32_t *)p->argmax + (pass->row0 + n) * out_len;
      for (size_t o = 0; o < out_len; o++) dxn[arg[o]] += dyn[o];
      continue;
    }
    for (int ci = 0; ci < p->c; ci++) {
      float *dxc = dxn + (size_t)ci * p->h * p->w;
      const float *dyc = dyn + (size_t)ci * p->oh * p->ow;
      for (int oh = 0; oh < p->oh; oh++)
        for (int ow = 0; ow < p->ow; ow++) {
          const float g = dyc[oh * p->ow + ow] * inv;
          for (int i = 0; i < p->size; i++)
            for (int j = 0; j < p->size; j++)
              dxc[(oh * p->stride + i) * p->w + ow * p->stride + j] += g;
        }
    }
  }
}

static int pool_tensors(const mn_layer *l, mn_tensor_info *t, int max) { return 0; }

const mn_layer_ops mn_maxpool_ops = {
    .type = "maxpool",
    .configure = maxpool_configure,
    .alloc = pool_alloc,
    .destroy = pool_destroy,
    .init = pool_init,
    .forward = pool_forward,
    .backward = pool_backward,
    .tensors = pool_tensors,
    .backward_skips_x = true,
    .backward_skips_y = true,
    .outputs_are_maxima = true,
    .per_sample = true,
};

const mn_layer_ops mn_avgpool_ops = {
    .type = "avgpool",
    .configure = avgpool_configure,
    .alloc = pool_alloc,
    .destroy = pool_destroy,
    .init = pool_init,
    .forward = pool_forward,
    .backward = pool_backward,
    .tensors = pool_tensors,
    .backward_skips_x = true,
    .backward_skips_y = true,
    .per_sample = true,
};
