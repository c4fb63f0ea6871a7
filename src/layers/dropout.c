/* dropout.c: inverted dropout: in training each value is kept with probability 1 - rate and
 * scaled by 1 / (1 - rate); in evaluation the layer is the identity.
 *
 * The mask of a value is a pure function of (seed, step, layer, dataset row of the sample,
 * element): not of the rank or the batch position. So N ranks draw exactly the masks one
 * rank draws, and a resumed run draws what the uninterrupted run would have. */
#include <stdlib.h>
#include <string.h>

#include "layer.h"
#include "rng.h"

typedef struct {
  float rate;
  float *mask; /* (max_batch, count): 0 or 1 / (1 - rate), from the last training forward */
} dropout;

static int dropout_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  dropout *d = calloc(1, sizeof *d);
  if (!d) return mn_fail(err, "out of memory");
  l->priv = d;
  double rate;
  if (mn_cfg_double(cfg, "rate", 0.5, 0.0, 0.99, &rate, err) != 0) return -1;
  d->rate = (float)rate;
  l->out = l->in;
  return 0;
}

static int dropout_alloc(mn_layer *l, int max_batch, mn_err *err) {
  dropout *d = l->priv;
  d->mask = mn_alloc((size_t)max_batch * mn_shape_count(l->in), sizeof(float), "dropout", err);
  return d->mask ? 0 : -1;
}

static void dropout_destroy(mn_layer *l) {
  dropout *d = l->priv;
  if (d) free(d->mask);
  free(d);
}

static void dropout_init(mn_layer *l, uint64_t seed) {}

static void dropout_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  dropout *d = l->priv;
  const size_t len = mn_shape_count(l->in);
  if (!p->training || d->rate == 0.0f) {
    memcpy(y, x, (size_t)batch * len * sizeof(float));
    return;
  }
  const float keep_scale = 1.0f / (1.0f - d->rate);
  const uint64_t stream = ((uint64_t)MN_STREAM_DROPOUT << 32) | (uint64_t)l->index;
  for (int n = 0; n < batch; n++) {
    const uint64_t row = p->sample_ids ? p->sample_ids[n] : (uint64_t)n;
    /* one key per (step, sample), then one draw per element */
    const uint64_t key = mn_rng_u64(p->seed, stream, ((uint64_t)p->step << 32) ^ row);
    float *m = d->mask + n * len;
    for (size_t j = 0; j < len; j++) {
      m[j] = mn_rng_uniform(key, stream, j) >= d->rate ? keep_scale : 0.0f;
      y[n * len + j] = x[n * len + j] * m[j];
    }
  }
}

static void dropout_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y,
                             float *dy, float *dx, int batch) {
  dropout *d = l->priv;
  if (!dx) return;
  const size_t n = (size_t)batch * mn_shape_count(l->in);
  if (!p->training || d->rate == 0.0f) {
    memcpy(dx, dy, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) dx[i] = dy[i] * d->mask[i];
}

static int dropout_tensors(const mn_layer *l, mn_tensor_info *t, int max) { return 0; }

const mn_layer_ops mn_dropout_ops = {
    .type = "dropout",
    .configure = dropout_configure,
    .alloc = dropout_alloc,
    .destroy = dropout_destroy,
    .init = dropout_init,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .tensors = dropout_tensors,
};
