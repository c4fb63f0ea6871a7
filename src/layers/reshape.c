/* reshape.c: flatten and reshape: the same values under another per-sample shape.
 *
 * flatten: (any) -> (count). reshape: `shape = a,b[,c]` with the same count, e.g. a
 * (1, 28, 28) image read as a sequence of 28 rows of 28 features for an LSTM. */
#include <stdio.h>
#include <string.h>

#include "layer.h"

static int flatten_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  l->out = (mn_shape){1, {(int)mn_shape_count(l->in)}};
  return 0;
}

static int reshape_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  const char *text;
  char where[700];
  mn_layer_where(cfg, where, sizeof where);
  if (!mn_cfg_has(cfg, "shape")) return mn_fail(err, "%s: reshape needs 'shape'", where);
  if (mn_cfg_string(cfg, "shape", NULL, &text, err) != 0) return -1;
  int d[4] = {0}, n = 0;
  char tail;
  n = sscanf(text, "%d , %d , %d , %d %c", &d[0], &d[1], &d[2], &d[3], &tail);
  if (n < 1 || n > MN_MAX_RANK)
    return mn_fail(err, "%s: shape '%s' is not 1 to %d comma-separated sizes", where, text,
                   MN_MAX_RANK);
  mn_shape s = {.rank = n};
  for (int i = 0; i < n; i++) {
    if (d[i] < 1) return mn_fail(err, "%s: shape '%s' has a size < 1", where, text);
    s.dim[i] = d[i];
  }
  if (mn_shape_count(s) != mn_shape_count(l->in)) {
    char to[64];
    mn_shape_format(s, to, sizeof to);
    return mn_layer_shape_error(cfg, l, err, "cannot reshape it to %s (%zu values)", to,
                                mn_shape_count(s));
  }
  l->out = s;
  return 0;
}

static void reshape_init(mn_layer *l, uint64_t seed) {}

static void reshape_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  memcpy(y, x, (size_t)batch * mn_shape_count(l->in) * sizeof(float));
}

static void reshape_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y,
                             float *dy, float *dx, int batch) {
  if (dx) memcpy(dx, dy, (size_t)batch * mn_shape_count(l->in) * sizeof(float));
}

static int reshape_tensors(const mn_layer *l, mn_tensor_info *t, int max) { return 0; }

const mn_layer_ops mn_flatten_ops = {
    .type = "flatten",
    .configure = flatten_configure,
    .init = reshape_init,
    .forward = reshape_forward,
    .backward = reshape_backward,
    .tensors = reshape_tensors,
    .backward_skips_x = true,
    .backward_skips_y = true,
};

const mn_layer_ops mn_reshape_ops = {
    .type = "reshape",
    .configure = reshape_configure,
    .init = reshape_init,
    .forward = reshape_forward,
    .backward = reshape_backward,
    .tensors = reshape_tensors,
    .backward_skips_x = true,
    .backward_skips_y = true,
};
