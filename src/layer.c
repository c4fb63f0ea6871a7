/* layer.c: the layer registry, shapes and weight initialisation shared by all layers. */
#include "layer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

extern const mn_layer_ops mn_dense_ops, mn_conv2d_ops, mn_maxpool_ops, mn_avgpool_ops,
    mn_global_avgpool_ops, mn_batchnorm_ops, mn_dropout_ops, mn_flatten_ops, mn_reshape_ops,
    mn_maxout_ops, mn_rnn_ops, mn_lstm_ops, mn_add_ops, mn_concat_ops;

static const mn_layer_ops *const registry[] = {
    &mn_dense_ops,     &mn_conv2d_ops,  &mn_maxpool_ops, &mn_avgpool_ops, &mn_global_avgpool_ops,
    &mn_batchnorm_ops, &mn_dropout_ops, &mn_flatten_ops, &mn_reshape_ops, &mn_maxout_ops,
    &mn_rnn_ops,       &mn_lstm_ops,    &mn_add_ops,     &mn_concat_ops,  NULL};

const mn_layer_ops *mn_layer_find(const char *type) {
  for (int i = 0; registry[i]; i++)
    if (strcmp(registry[i]->type, type) == 0) return registry[i];
  return NULL;
}

const char *mn_layer_type_list(void) {
  static char list[256];
  if (!list[0])
    for (int i = 0; registry[i]; i++) {
      strncat(list, registry[i]->type, sizeof list - strlen(list) - 1);
      if (registry[i + 1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
  return list;
}

void mn_layer_where(const mn_cfg_section *cfg, char *buf, size_t len) {
  mn_cfg_where(cfg, NULL, buf, len);
}

void mn_layer_input_name(const mn_cfg_section *cfg, int k, char *buf, size_t len) {
  const mn_cfg_entry *e = mn_cfg_find(cfg, "inputs");
  snprintf(buf, len, "%s", k == 0 ? "the layer before" : "?");
  if (!e) return;
  const char *s = e->value;
  for (int i = 0; i < k && s; i++) {
    s = strchr(s, ',');
    if (s) s++;
  }
  if (!s) return;
  s += strspn(s, " \t");
  const size_t n = strcspn(s, ", \t");
  snprintf(buf, len, "%.*s", (int)n, s);
}

int mn_layer_shape_error(const mn_cfg_section *cfg, const mn_layer *l, mn_err *err, const char *fmt,
                         ...) {
  char where[700], what[512], in[64];
  mn_layer_where(cfg, where, sizeof where);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  mn_shape_format(l->in, in, sizeof in);
  return mn_fail(err, "%s: %s layer gets input of shape %s: %s", where, l->ops->type, in, what);
}

int mn_layer_parse_init(mn_layer *l, mn_cfg_section *cfg, mn_err *err) {
  return mn_cfg_choice(cfg, "init", mn_init_names, 0, &l->init_kind, err);
}

size_t mn_shape_count(mn_shape s) {
  size_t n = 1;
  for (int i = 0; i < s.rank; i++) n *= (size_t)s.dim[i];
  return n;
}

void mn_shape_format(mn_shape s, char *buf, size_t len) {
  size_t n = (size_t)snprintf(buf, len, "(");
  for (int i = 0; i < s.rank && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%d", i ? ", " : "", s.dim[i]);
  if (n < len) snprintf(buf + n, len - n, ")");
}

const char *const mn_init_names[] = {"auto",       "xavier_uniform", "xavier_normal",
                                     "he_uniform", "he_normal",      NULL};

void mn_init_weights(float *w, size_t n, int kind, mn_activation act, float alpha, size_t fan_in,
                     size_t fan_out, uint64_t seed, int layer_index) {
  const int rectifier = act == MN_ACT_RELU || act == MN_ACT_LEAKY_RELU || act == MN_ACT_ELU;
  if (kind == MN_INIT_AUTO) kind = rectifier ? MN_INIT_HE_NORMAL : MN_INIT_XAVIER_UNIFORM;
  /* He's variance 2 / fan_in keeps a ReLU layer's output variance; a leaky ReLU passes
   * alpha^2 of the negative half too, so it needs 2 / ((1 + alpha^2) fan_in) (He et al.,
   * 2015; PyTorch's kaiming_* with a = alpha). ELU has no closed form and takes ReLU's. */
  const double he = act == MN_ACT_LEAKY_RELU ? 2.0 / (1.0 + (double)alpha * alpha) : 2.0;
  uint64_t stream = ((uint64_t)MN_STREAM_INIT << 32) | (uint64_t)layer_index;
  double limit = 0.0, stddev = 0.0;
  switch (kind) {
  case MN_INIT_XAVIER_UNIFORM: limit = sqrt(6.0 / (double)(fan_in + fan_out)); break;
  case MN_INIT_XAVIER_NORMAL: stddev = sqrt(2.0 / (double)(fan_in + fan_out)); break;
  case MN_INIT_HE_UNIFORM: limit = sqrt(3.0 * he / (double)fan_in); break;
  default: stddev = sqrt(he / (double)fan_in); break;
  }
  for (size_t i = 0; i < n; i++) {
    if (limit > 0.0)
      w[i] = (float)(limit * (2.0 * mn_rng_uniform(seed, stream, i) - 1.0));
    else
      w[i] = (float)(stddev * mn_rng_normal(seed, stream, i));
  }
}
