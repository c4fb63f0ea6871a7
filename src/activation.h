/* activation.h: element-wise and row-wise activations, applied in place after a layer's
 * affine part (fused, so the output is written once) and differentiated from the output y
 * alone, so a layer keeps no copy of its pre-activation. */
#ifndef MN_ACTIVATION_H
#define MN_ACTIVATION_H

#include <stddef.h>

typedef enum {
  MN_ACT_NONE,
  MN_ACT_SIGMOID,
  MN_ACT_TANH,
  MN_ACT_RELU,
  MN_ACT_SOFTMAX, /* over each row of `width` values */
} mn_activation;

/* Names as written in configs, indexed by mn_activation, NULL-terminated. */
extern const char *const mn_activation_names[];

/* y = f(y) in place over rows x width values. */
void mn_activation_forward(mn_activation act, float *y, size_t rows, size_t width);
/* dy = dy * f'(.) in place, from the activation's output y. */
void mn_activation_backward(mn_activation act, const float *y, float *dy, size_t rows,
                            size_t width);

#endif
