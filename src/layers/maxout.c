/* maxout.c: maxout units (Goodfellow et al. 2013): the max over groups of k inputs.
 *
 * in x (B, G*k) -> out y (B, G), or (B, G*k, H, W) -> (B, G, H, W) over channel groups.
 * y_g = max_i x_{g*k + i}. A classic maxout layer is a dense (or conv2d) layer with
 * units = G*k followed by this one with pieces = k. The gradient goes to the (first) max. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
  int pieces, groups;
  size_t spatial;  /* values per channel (1 for flat inputs) */
  int32_t *argmax; /* (max_batch, out): which piece won */
} maxout;

static int maxout_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  maxout *m = calloc(1, sizeof *m);
  if (!m) return mn_fail(err, "out of memory");
  l->priv = m;
  long pieces;
  if (mn_cfg_int(cfg, "pieces", 2, 2, 1 << 10, &pieces, err) != 0) return -1;
  if (l->in.rank != 1 && l->in.rank != 3)
    return mn_layer_shape_error(cfg, l, err, "maxout needs (features) or (C, H, W) samples");
  int channels = l->in.dim[0];
  if (channels % pieces != 0)
    return mn_layer_shape_error(cfg, l, err, "%d %s are not divisible into groups of %ld", channels,
                                l->in.rank == 1 ? "features" : "channels", pieces);
  m->pieces = (int)pieces;
  m->groups = channels / (int)pieces;
  m->spatial = mn_shape_count(l->in) / (size_t)channels;
  l->out = l->in;
  l->out.dim[0] = m->groups;
  return 0;
}

static int maxout_alloc(mn_layer *l, int max_batch, mn_err *err) {
  maxout *m = l->priv;
  m->argmax = mn_alloc((size_t)max_batch * mn_shape_count(l->out), sizeof(int32_t), "maxout", err);
  return m->argmax ? 0 : -1;
}

static void maxout_destroy(mn_layer *l) {
  maxout *m = l->priv;
  if (m) free(m->argmax);
  free(m);
}

static void maxout_init(mn_layer *l, uint64_t seed) {}

static void maxout_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  maxout *m = l->priv;
  const size_t in_len = mn_shape_count(l->in), out_len = mn_shape_count(l->out), s = m->spatial;
  for (int n = 0; n < batch; n++)
    for (int g = 0; g < m->groups; g++)
      for (size_t j = 0; j < s; j++) {
        const float *xg = x + n * in_len + (size_t)g * m->pieces * s + j;
        int best = 0;
        for (int i = 1; i < m->pieces; i++)
          if (xg[(size_t)i * s] > xg[(size_t)best * s]) best = i;
        size_t o = n * out_len + (size_t)g * s + j;
        y[o] = xg[(size_t)best * s];
        m->argmax[o] = best;
      }
}

static void maxout_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y,
                            float *dy, float *dx, int batch) {
  maxout *m = l->priv;
  if (!dx) return;
  const size_t in_len = mn_shape_count(l->in), out_len = mn_shape_count(l->out), s = m->spatial;
  memset(dx, 0, (size_t)batch * in_len * sizeof(float));
  for (int n = 0; n < batch; n++)
    for (int g = 0; g < m->groups; g++)
      for (size_t j = 0; j < s; j++) {
        size_t o = n * out_len + (size_t)g * s + j;
        dx[n * in_len + ((size_t)g * m->pieces + (size_t)m->argmax[o]) * s + j] = dy[o];
      }
}

static int maxout_tensors(const mn_layer *l, mn_tensor_info *t, int max) { return 0; }

const mn_layer_ops mn_maxout_ops = {
    .type = "maxout",
    .configure = maxout_configure,
    .alloc = maxout_alloc,
    .destroy = maxout_destroy,
    .init = maxout_init,
    .forward = maxout_forward,
    .backward = maxout_backward,
    .tensors = maxout_tensors,
    .backward_skips_x = true,
    .backward_skips_y = true,
    .outputs_are_maxima = true,
};
