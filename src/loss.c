/* loss.c: softmax cross-entropy and mean squared error. */
#include "loss.h"

#include <math.h>
#include <stddef.h>

const char *const mn_loss_names[] = {"cross_entropy", "mse", "binary_cross_entropy", NULL};

int mn_argmax(const float *v, int k) {
  int best = 0;
  for (int i = 1; i < k; i++)
    if (v[i] > v[best]) best = i;
  return best;
}

/* Cross-entropy of labels against logits (final_act none) or probabilities (softmax).
 * Either way the gradient is taken w.r.t. the logits: softmax(z) - onehot(y). */
static void cross_entropy(mn_activation final_act, const float *out, const int32_t *labels,
                          int batch, int k, float scale, float *grad, mn_loss_stats *st) {
  for (int i = 0; i < batch; i++) {
    const float *o = out + (size_t)i * k;
    const int y = labels[i];
    if (mn_argmax(o, k) == y) st->correct++;
    if (final_act == MN_ACT_SOFTMAX) {
      st->loss_sum -= log(fmax((double)o[y], 1e-30));
      if (grad)
        for (int j = 0; j < k; j++) grad[(size_t)i * k + j] = scale * (o[j] - (j == y));
    } else {
      float max = o[0];
      for (int j = 1; j < k; j++) max = o[j] > max ? o[j] : max;
      double sum = 0.0;
      for (int j = 0; j < k; j++) sum += exp((double)(o[j] - max));
      double log_sum = log(sum) + (double)max;
      st->loss_sum += log_sum - (double)o[y];
      if (grad)
        for (int j = 0; j < k; j++) {
          double p = exp((double)o[j] - log_sum);
          grad[(size_t)i * k + j] = scale * (float)(p - (j == y));
        }
    }
  }
}

/* Mean over the k outputs of the squared error; integer labels become one-hot targets. */
static void mean_squared_error(const float *out, const int32_t *labels, const float *targets,
                               int batch, int k, float scale, float *grad, mn_loss_stats *st) {
  for (int i = 0; i < batch; i++) {
    const float *o = out + (size_t)i * k;
    double sq = 0.0;
    for (int j = 0; j < k; j++) {
      float t = targets ? targets[(size_t)i * k + j] : (float)(j == labels[i]);
      float d = o[j] - t;
      const double u = st->unit_scale ? (double)st->unit_scale[j] : 1.0;
      sq += (double)d * d * u * u;
      if (grad) grad[(size_t)i * k + j] = scale * 2.0f * d / (float)k;
    }
    st->loss_sum += sq / k;
    if (labels && mn_argmax(o, k) == labels[i]) st->correct++;
  }
}

/* Binary cross-entropy of each of the k outputs (mean over k), against probabilities
 * (final_act sigmoid) or logits (none, computed stably); gradient w.r.t. the logits:
 * (sigmoid(z) - t) / k. */
static void binary_cross_entropy(mn_activation final_act, const float *out, const int32_t *labels,
                                 const float *targets, int batch, int k, float scale, float *grad,
                                 mn_loss_stats *st) {
  for (int i = 0; i < batch; i++) {
    const float *o = out + (size_t)i * k;
    double sum = 0.0;
    for (int j = 0; j < k; j++) {
      double t = targets ? targets[(size_t)i * k + j] : (double)(j == labels[i]);
      double p, z = o[j];
      if (final_act == MN_ACT_SIGMOID) {
        p = o[j];
        sum -= t * log(fmax(p, 1e-30)) + (1.0 - t) * log(fmax(1.0 - p, 1e-30));
      } else {
        p = 1.0 / (1.0 + exp(-z));
        sum += fmax(z, 0.0) - z * t + log1p(exp(-fabs(z)));
      }
      if (grad) grad[(size_t)i * k + j] = scale * (float)((p - t) / k);
    }
    st->loss_sum += sum / k;
    if (labels && mn_argmax(o, k) == labels[i]) st->correct++;
  }
}

void mn_loss_compute(mn_loss_kind kind, mn_activation final_act, const float *out,
                     const int32_t *labels, const float *targets, int batch, int k,
                     float grad_scale, float *grad, mn_loss_stats *stats) {
  if (kind == MN_LOSS_CROSS_ENTROPY)
    cross_entropy(final_act, out, labels, batch, k, grad_scale, grad, stats);
  else if (kind == MN_LOSS_BCE)
    binary_cross_entropy(final_act, out, labels, targets, batch, k, grad_scale, grad, stats);
  else
    mean_squared_error(out, labels, targets, batch, k, grad_scale, grad, stats);
}
