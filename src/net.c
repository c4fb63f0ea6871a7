/* net.c: building the layer list, the single parameter/gradient buffers, forward and backward. */
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int configure_layer(mn_layer *l, mn_cfg_section *s, mn_err *err) {
  const char *type;
  if (!mn_cfg_has(s, "type")) {
    char where[700];
    mn_cfg_where(s, NULL, where, sizeof where);
    return mn_fail(err, "%s: missing key 'type' (one of: %s)", where, mn_layer_type_list());
  }
  if (mn_cfg_string(s, "type", NULL, &type, err) != 0)
    return -1;
  l->ops = mn_layer_find(type);
  if (!l->ops) {
    char where[700];
    mn_cfg_where(s, NULL, where, sizeof where);
    return mn_fail(err, "%s: unknown layer type '%s' (known: %s)", where, type,
                   mn_layer_type_list());
  }
  snprintf(l->name, sizeof l->name, "%02d_%s", l->index, l->ops->type);
  return l->ops->configure(l, s, err);
}

int mn_net_create(mn_net *net, mn_config *cfg, mn_shape in, int outputs, mn_loss_kind loss,
                  int max_batch, mn_err *err) {
  memset(net, 0, sizeof *net);
  net->in_shape = in;
  net->outputs = outputs;
  net->loss = loss;
  net->max_batch = max_batch;
  for (int i = 0; i < cfg->count; i++)
    if (strcmp(cfg->sections[i].name, "layer") == 0)
      net->nlayers++;
  if (net->nlayers == 0)
    return mn_fail(err, "%s: no [layer] sections", cfg->path);
  net->layers = mn_alloc((size_t)net->nlayers, sizeof(mn_layer), "layers", err);
  net->acts = mn_alloc((size_t)net->nlayers, sizeof(float *), "activations", err);
  if (!net->layers || !net->acts)
    goto fail;

  mn_shape shape = in;
  size_t widest = mn_shape_count(in);
  int li = 0;
  mn_cfg_section *last = NULL;
  for (int i = 0; i < cfg->count; i++) {
    mn_cfg_section *s = &cfg->sections[i];
    if (strcmp(s->name, "layer") != 0)
      continue;
    mn_layer *l = &net->layers[li];
    l->index = li++;
    l->in = shape;
    if (configure_layer(l, s, err) != 0)
      goto fail;
    shape = l->out;
    if (mn_shape_count(shape) > widest)
      widest = mn_shape_count(shape);
    net->nparams += l->nparams;
    last = s;
  }
  mn_layer *final = &net->layers[net->nlayers - 1];
  if (mn_shape_count(final->out) != (size_t)outputs) {
    char where[700], got[64];
    mn_cfg_where(last, NULL, where, sizeof where);
    mn_shape_format(final->out, got, sizeof got);
    mn_fail(err,
            "%s: the last layer outputs %s values per sample but the data needs %d "
            "(classes or target width)",
            where, got, outputs);
    goto fail;
  }
  if (loss == MN_LOSS_CROSS_ENTROPY) {
    if (final->act != MN_ACT_NONE && final->act != MN_ACT_SOFTMAX) {
      char where[700];
      mn_cfg_where(last, NULL, where, sizeof where);
      mn_fail(err,
              "%s: loss cross_entropy needs the last layer's activation to be softmax or "
              "none (got %s)",
              where, mn_activation_names[final->act]);
      goto fail;
    }
    final->act_in_loss = final->act == MN_ACT_SOFTMAX;
  }

  net->params = mn_alloc(net->nparams, sizeof(float), "parameters", err);
  net->grads = mn_alloc(net->nparams + MN_GRAD_TAIL, sizeof(float), "gradients", err);
  if (!net->params || !net->grads)
    goto fail;
  /* Last layer first: backward completes the buffer front to back. */
  size_t offset = 0;
  for (int i = net->nlayers - 1; i >= 0; i--) {
    mn_layer *l = &net->layers[i];
    l->param_offset = offset;
    l->params = net->params + offset;
    l->grads = net->grads + offset;
    offset += l->nparams;
  }
  for (int i = 0; i < net->nlayers; i++) {
    net->acts[i] = mn_alloc((size_t)max_batch * mn_shape_count(net->layers[i].out), sizeof(float),
                            "activations", err);
    if (!net->acts[i])
      goto fail;
  }
  net->dcur = mn_alloc((size_t)max_batch * widest, sizeof(float), "gradient buffer", err);
  net->dnext = mn_alloc((size_t)max_batch * widest, sizeof(float), "gradient buffer", err);
  if (!net->dcur || !net->dnext)
    goto fail;
  return 0;
fail:
  mn_net_destroy(net);
  return -1;
}

void mn_net_destroy(mn_net *net) {
  if (net->acts)
    for (int i = 0; i < net->nlayers; i++)
      free(net->acts[i]);
  free(net->acts);
  free(net->layers);
  free(net->params);
  free(net->grads);
  free(net->dcur);
  free(net->dnext);
  memset(net, 0, sizeof *net);
}

void mn_net_init_params(mn_net *net, uint64_t seed) {
  for (int i = 0; i < net->nlayers; i++)
    net->layers[i].ops->init(&net->layers[i], seed);
}

const float *mn_net_forward(mn_net *net, const float *x, int batch, bool training) {
  const float *in = x;
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    l->ops->forward(l, in, net->acts[i], batch, training);
    in = net->acts[i];
  }
  return in;
}

float *mn_net_output_grad(mn_net *net) { return net->dcur; }

void mn_net_backward(mn_net *net, const float *x, int batch) {
  for (int i = net->nlayers - 1; i >= 0; i--) {
    mn_layer *l = &net->layers[i];
    const float *in = i > 0 ? net->acts[i - 1] : x;
    l->ops->backward(l, in, net->acts[i], net->dcur, i > 0 ? net->dnext : NULL, batch);
    float *t = net->dcur;
    net->dcur = net->dnext;
    net->dnext = t;
  }
}

void mn_net_zero_grads(mn_net *net) {
  memset(net->grads, 0, (net->nparams + MN_GRAD_TAIL) * sizeof(float));
}

mn_activation mn_net_final_act(const mn_net *net) { return net->layers[net->nlayers - 1].act; }

uint64_t mn_net_param_hash(const mn_net *net) {
  const unsigned char *p = (const unsigned char *)net->params;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < net->nparams * sizeof(float); i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}
