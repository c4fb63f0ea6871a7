/* activation.c: forward and output-based backward of each activation. */
#include "activation.h"

#include <math.h>

const char *const mn_activation_names[] = {"none",    "sigmoid",    "tanh", "relu",
                                           "softmax", "leaky_relu", "elu",  NULL};

float mn_activation_default_alpha(mn_activation act) {
  return act == MN_ACT_LEAKY_RELU ? 0.01f : act == MN_ACT_ELU ? 1.0f : 0.0f;
}

static void softmax_rows(float *y, size_t rows, size_t width) {
  for (size_t r = 0; r < rows; r++) {
    float *row = y + r * width;
    float max = row[0];
    for (size_t i = 1; i < width; i++) max = row[i] > max ? row[i] : max;
    float sum = 0.0f;
    for (size_t i = 0; i < width; i++) {
      row[i] = expf(row[i] - max);
      sum += row[i];
    }
    float inv = 1.0f / sum;
    for (size_t i = 0; i < width; i++) row[i] *= inv;
  }
}

void mn_activation_forward(mn_activation act, float alpha, float *y, size_t rows, size_t width) {
  size_t n = rows * width;
  switch (act) {
  case MN_ACT_NONE: break;
  case MN_ACT_SIGMOID:
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-y[i]));
    break;
  case MN_ACT_TANH:
    for (size_t i = 0; i < n; i++) y[i] = tanhf(y[i]);
    break;
  case MN_ACT_RELU:
    /* written so that a NaN stays NaN: a fault must reach the loss, not turn into 0 */
    for (size_t i = 0; i < n; i++) y[i] = y[i] < 0.0f ? 0.0f : y[i];
    break;
  case MN_ACT_SOFTMAX: softmax_rows(y, rows, width); break;
  case MN_ACT_LEAKY_RELU:
    for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : alpha * y[i];
    break;
  case MN_ACT_ELU:
    for (size_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : alpha * expm1f(y[i]);
    break;
  }
}

void mn_activation_backward(mn_activation act, float alpha, const float *y, float *dy, size_t rows,
                            size_t width) {
  size_t n = rows * width;
  switch (act) {
  case MN_ACT_NONE: break;
  case MN_ACT_SIGMOID:
    for (size_t i = 0; i < n; i++) dy[i] *= y[i] * (1.0f - y[i]);
    break;
  case MN_ACT_TANH:
    for (size_t i = 0; i < n; i++) dy[i] *= 1.0f - y[i] * y[i];
    break;
  case MN_ACT_RELU:
    for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    break;
  case MN_ACT_SOFTMAX:
    /* Jacobian-vector product: dz_i = y_i (dy_i - sum_j dy_j y_j) */
    for (size_t r = 0; r < rows; r++) {
      const float *yr = y + r * width;
      float *dr = dy + r * width;
      float dot = 0.0f;
      for (size_t i = 0; i < width; i++) dot += dr[i] * yr[i];
      for (size_t i = 0; i < width; i++) dr[i] = yr[i] * (dr[i] - dot);
    }
    break;
  case MN_ACT_LEAKY_RELU:
    /* with a positive slope, y > 0 exactly when the input was */
    for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0.0f ? dy[i] : alpha * dy[i];
    break;
  case MN_ACT_ELU:
    /* for x <= 0: y = alpha (e^x - 1), so dy/dx = alpha e^x = y + alpha */
    for (size_t i = 0; i < n; i++) dy[i] = y[i] > 0.0f ? dy[i] : (y[i] + alpha) * dy[i];
    break;
  }
}
