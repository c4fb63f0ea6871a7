/* batchnorm.c: batch normalization (Ioffe & Szegedy 2015).
 *
 * in x (B, F) normalised per feature, or (B, C, H, W) per channel over B*H*W values.
 * Params gamma, beta (C); state running_mean, running_var (C), used in evaluation and saved
 * in checkpoints. Keys: momentum (0.1, PyTorch's convention), eps (1e-5), sync (false).
 * Training statistics come from this rank's batch; with sync = true they come from the global
 * batch (like PyTorch's SyncBatchNorm): the sums are all-reduced through mn_pass's callback in
 * forward (sum, sum of squares, count) and backward (sum dy, sum dy*xhat), so an N-rank run
 * matches the 1-rank run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layer.h"

typedef struct {
  int channels;
  size_t spatial;
  double momentum, eps;
  bool sync;
  float *xhat;    /* (max_batch, count): normalised input of the last training forward */
  float *inv_std; /* (C) */
  double *sums;   /* (2C + 1) scratch for the reductions */
} batchnorm;

static int bn_configure(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  if (l->in.rank != 1 && l->in.rank != 3)
    return mn_layer_shape_error(cfg, l, err, "batchnorm needs (features) or (C, H, W) samples");
  batchnorm *b = calloc(1, sizeof *b);
  if (!b) return mn_fail(err, "out of memory");
  l->priv = b;
  if (mn_cfg_double(cfg, "momentum", 0.1, 0.0, 1.0, &b->momentum, err) != 0 ||
      mn_cfg_double(cfg, "eps", 1e-5, 1e-12, 1.0, &b->eps, err) != 0 ||
      mn_cfg_bool(cfg, "sync", false, &b->sync, err) != 0)
    return -1;
  b->channels = l->in.dim[0];
  b->spatial = mn_shape_count(l->in) / (size_t)b->channels;
  l->out = l->in;
  l->nparams = 2 * (size_t)b->channels;
  l->nstate = 2 * (size_t)b->channels;
  return 0;
}

static int bn_alloc(mn_layer *l, int max_batch, mn_err *err) {
  batchnorm *b = l->priv;
  b->xhat = mn_alloc((size_t)max_batch * mn_shape_count(l->in), sizeof(float), "batchnorm", err);
  b->inv_std = mn_alloc((size_t)b->channels, sizeof(float), "batchnorm", err);
  b->sums = mn_alloc(2 * (size_t)b->channels + 1, sizeof(double), "batchnorm", err);
  return b->xhat && b->inv_std && b->sums ? 0 : -1;
}

static void bn_destroy(mn_layer *l) {
  batchnorm *b = l->priv;
  if (b) free(b->xhat), free(b->inv_std), free(b->sums);
  free(b);
}

static void bn_init(mn_layer *l, uint64_t seed) {
  batchnorm *b = l->priv;
  const int c = b->channels;
  for (int i = 0; i < c; i++) {
    l->params[i] = 1.0f;     /* gamma */
    l->params[c + i] = 0.0f; /* beta */
    l->state[i] = 0.0f;      /* running mean */
    l->state[c + i] = 1.0f;  /* running variance */
  }
}

static void bn_forward(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch) {
  batchnorm *b = l->priv;
  const int c = b->channels;
  const size_t s = b->spatial, len = mn_shape_count(l->in);
  const float *gamma = l->params, *beta = l->params + c;
  float *rmean = l->state, *rvar = l->state + c;
  if (!p->training) {
    for (int n = 0; n < batch; n++)
      for (int ci = 0; ci < c; ci++) {
        const float scale = gamma[ci] / sqrtf(rvar[ci] + (float)b->eps);
        const float shift = beta[ci] - rmean[ci] * scale;
        const size_t o = n * len + (size_t)ci * s;
        for (size_t j = 0; j < s; j++) y[o + j] = x[o + j] * scale + shift;
      }
    return;
  }
  double *sum = b->sums, *sq = b->sums + c;
  memset(b->sums, 0, (2 * (size_t)c + 1) * sizeof(double));
  for (int n = 0; n < batch; n++)
    for (int ci = 0; ci < c; ci++) {
      const float *xc = x + n * len + (size_t)ci * s;
      for (size_t j = 0; j < s; j++) sum[ci] += xc[j], sq[ci] += (double)xc[j] * xc[j];
    }
  b->sums[2 * c] = (double)batch * (double)s;
  if (b->sync && p->allreduce_sum) p->allreduce_sum(p->allreduce_user, b->sums, 2 * (size_t)c + 1);
  const double count = b->sums[2 * c];
  for (int ci = 0; ci < c; ci++) {
    const double mean = sum[ci] / count;
    const double var = fmax(sq[ci] / count - mean * mean, 0.0);
    b->inv_std[ci] = (float)(1.0 / sqrt(var + b->eps));
    rmean[ci] = (float)((1.0 - b->momentum) * rmean[ci] + b->momentum * mean);
    rvar[ci] = (float)((1.0 - b->momentum) * rvar[ci] +
                       b->momentum * var * count / (count > 1 ? count - 1 : 1));
    sum[ci] = mean; /* kept for the normalisation below */
  }
  for (int n = 0; n < batch; n++)
    for (int ci = 0; ci < c; ci++) {
      const size_t o = n * len + (size_t)ci * s;
      const float mean = (float)sum[ci], inv = b->inv_std[ci];
      for (size_t j = 0; j < s; j++) {
        const float xh = (x[o + j] - mean) * inv;
        b->xhat[o + j] = xh;
        y[o + j] = gamma[ci] * xh + beta[ci];
      }
    }
}

static void bn_backward(mn_layer *l, const mn_pass *p, const float *x, const float *y, float *dy,
                        float *dx, int batch) {
  batchnorm *b = l->priv;
  const int c = b->channels;
  const size_t s = b->spatial, len = mn_shape_count(l->in);
  const float *gamma = l->params;
  float *dgamma = l->grads, *dbeta = l->grads + c;
  double *sdy = b->sums, *sdyx = b->sums + c;
  memset(b->sums, 0, (2 * (size_t)c + 1) * sizeof(double));
  for (int n = 0; n < batch; n++)
    for (int ci = 0; ci < c; ci++) {
      const size_t o = n * len + (size_t)ci * s;
      for (size_t j = 0; j < s; j++) sdy[ci] += dy[o + j], sdyx[ci] += dy[o + j] * b->xhat[o + j];
    }
  for (int ci = 0; ci < c; ci++) dbeta[ci] += (float)sdy[ci], dgamma[ci] += (float)sdyx[ci];
  if (!dx) return;
  double count = (double)batch * (double)s;
  if (b->sync && p->allreduce_sum) {
    b->sums[2 * c] = count;
    p->allreduce_sum(p->allreduce_user, b->sums, 2 * (size_t)c + 1);
    count = b->sums[2 * c];
  }
  /* dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)) */
  for (int n = 0; n < batch; n++)
    for (int ci = 0; ci < c; ci++) {
      const size_t o = n * len + (size_t)ci * s;
      const float k = gamma[ci] * b->inv_std[ci];
      const float mdy = (float)(sdy[ci] / count), mdyx = (float)(sdyx[ci] / count);
      for (size_t j = 0; j < s; j++) dx[o + j] = k * (dy[o + j] - mdy - b->xhat[o + j] * mdyx);
    }
}

static int bn_tensors(const mn_layer *l, mn_tensor_info *t, int max) {
  const batchnorm *b = l->priv;
  const size_t c = (size_t)b->channels;
  if (max < 4) return 0;
  t[0] = (mn_tensor_info){.name = "gamma", .rank = 1, .dim = {c}};
  t[1] = (mn_tensor_info){.name = "beta", .rank = 1, .dim = {c}, .offset = c};
  t[2] = (mn_tensor_info){.name = "running_mean", .rank = 1, .dim = {c}, .is_state = true};
  t[3] =
      (mn_tensor_info){.name = "running_var", .rank = 1, .dim = {c}, .offset = c, .is_state = true};
  return 4;
}

const mn_layer_ops mn_batchnorm_ops = {
    .type = "batchnorm",
    .configure = bn_configure,
    .alloc = bn_alloc,
    .destroy = bn_destroy,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
    .tensors = bn_tensors,
};
