/* global_pool.c: global average pooling, (C, H, W) -> (C): each channel's mean over its
 * H x W positions, as in the head of a ResNet (PyTorch's AdaptiveAvgPool2d(1) + flatten).
 * No keys, no parameters. Backward spreads each channel's gradient evenly over its
 * positions. */
#include <stdlib.h>

#include "layer.h"

static int gap_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  if (l->in.rank != 3)
    return mn_layer_shape_error(cfg, l, err, "global_avgpool needs (C, H, W) samples");
  l->out = (mn_shape){1, {l->in.dim[0]}};
  return 0;
}

static void gap_init(mn_layer *l, uint64_t seed) {}

static void gap_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  const int c = l->in.dim[0], hw = l->in.dim[1] * l->in.dim[2];
  const float inv = 1.0f / (float)hw;
  for (int n = 0; n < batch; n++)
    for (int ci = 0; ci < c; ci++) {
      const float *xc = x + ((size_t)n * c + ci) * hw;
      float sum = 0.0f;
      for (int j = 0; j < hw; j++) sum += xc[j];
      y[(size_t)n * c + ci] = sum * inv;
    }
}

static void gap_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y, float *dy,
                         float *dx, int batch) {
  if (!dx) return;
  const int c = l->in.dim[0], hw = l->in.dim[1] * l->in.dim[2];
  const float inv = 1.0f / (float)hw;
  for (int n = 0; n < batch; n++)
    for (int ci = 0; ci < c; ci++) {
      const float g = dy[(size_t)n * c + ci] * inv;
      float *dxc = dx + ((size_t)n * c + ci) * hw;
      for (int j = 0; j < hw; j++) dxc[j] = g;
    }
}

static int gap_tensors(const mn_layer *l, mn_tensor_info *t, int max) { return 0; }

const mn_layer_ops mn_global_avgpool_ops = {
    .type = "global_avgpool",
    .configure = gap_configure,
    .init = gap_init,
    .forward = gap_forward,
    .backward = gap_backward,
    .tensors = gap_tensors,
    .backward_skips_x = true,
    .backward_skips_y = true,
    .per_sample = true,
};
