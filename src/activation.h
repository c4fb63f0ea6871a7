/* activation.h: element-wise and row-wise activations, applied in place to a layer's output
 * (so the output is written once) and differentiated from the output y alone, so no layer
 * keeps a copy of its pre-activation. Every one of them can be inverted from y for the
 * derivative: sigmoid y(1-y), tanh 1-y^2, ReLU [y>0], leaky ReLU y>0 ? 1 : alpha,
 * ELU y>0 ? 1 : y + alpha, softmax y (dy - <dy, y>). */
#ifndef MN_ACTIVATION_H
#define MN_ACTIVATION_H

#include <stddef.h>

typedef enum {
  MN_ACT_NONE,
  MN_ACT_SIGMOID,
  MN_ACT_TANH,
  MN_ACT_RELU,
  MN_ACT_SOFTMAX, /* over each row of `width` values */
  MN_ACT_LEAKY_RELU,
  MN_ACT_ELU,
} mn_activation;

/* Names as written in configs, indexed by mn_activation, NULL-terminated. */
extern const char *const mn_activation_names[];
/* The default `alpha` of an activation (0.01 leaky ReLU, 1.0 ELU, else unused). */
float mn_activation_default_alpha(mn_activation act);

/* y = f(y) in place over rows x width values. */
void mn_activation_forward(mn_activation act, float alpha, float *y, size_t rows, size_t width);
/* dy = dy * f'(.) in place, from the activation's output y. */
void mn_activation_backward(mn_activation act, float alpha, const float *y, float *dy, size_t rows,
                            size_t width);

#endif
