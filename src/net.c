/* net.c: building the layer list, the single parameter/gradient/state buffers, forward and
 * backward with the activations the network applies for every layer. */
#include "net.h"

#include "clones.h"
#include "hash.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys every layer type accepts: its activation and per-layer regularisation. */
static int configure_common(mn_layer *l, mn_cfg_section *s, mn_err *err) {
  int act;
  double alpha;
  if (mn_cfg_choice(s, "activation", mn_activation_names, MN_ACT_NONE, &act, err) != 0) return -1;
  l->act = (mn_activation)act;
  if (mn_cfg_double(s, "alpha", mn_activation_default_alpha(l->act), 0.0, 100.0, &alpha, err) !=
          0 ||
      mn_cfg_double(s, "weight_decay", -1.0, -1.0, 1.0, &l->l2, err) != 0 ||
      mn_cfg_double(s, "l1", -1.0, -1.0, 1.0, &l->l1, err) != 0)
    return -1;
  l->alpha = (float)alpha;
  return 0;
}

static int configure_layer(mn_layer *l, mn_cfg_section *s, mn_err *err) {
  const char *type;
  char where[700];
  mn_layer_where(s, where, sizeof where);
  if (!mn_cfg_has(s, "type"))
    return mn_fail(err, "%s: missing key 'type' (one of: %s)", where, mn_layer_type_list());
  if (mn_cfg_string(s, "type", NULL, &type, err) != 0) return -1;
  l->ops = mn_layer_find(type);
  if (!l->ops)
    return mn_fail(err, "%s: unknown layer type '%s' (known: %s)", where, type,
                   mn_layer_type_list());
  snprintf(l->name, sizeof l->name, "%02d_%s", l->index, l->ops->type);
  if (configure_common(l, s, err) != 0) return -1;
  if (l->ops->configure(l, s, err) != 0) return -1;
  if (l->act == MN_ACT_SOFTMAX && l->out.rank != 1) {
    char shape[64];
    mn_shape_format(l->out, shape, sizeof shape);
    return mn_fail(err,
                   "%s: softmax needs a flat output, this layer's is %s (add a flatten "
                   "layer first)",
                   where, shape);
  }
  return 0;
}

/* Moves ReLUs past max-of-inputs layers, leaves the ReLUs it can to the layers' own forward,
 * and picks where backward writes each dx (the run_act, act_by_layer and dx_over_input
 * fields of mn_layer). */
static void plan(mn_net *net) {
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    l->run_act = l->act, l->run_alpha = l->alpha;
  }
  for (int i = 0; i + 1 < net->nlayers; i++) {
    mn_layer *l = &net->layers[i], *next = &net->layers[i + 1];
    if (l->act == MN_ACT_RELU && next->ops->outputs_are_maxima && next->act == MN_ACT_NONE)
      next->run_act = MN_ACT_RELU, l->run_act = MN_ACT_NONE;
  }
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    l->act_by_layer = l->ops->forward_applies_relu && l->run_act == MN_ACT_RELU;
  }
  for (int i = 1; i < net->nlayers; i++) {
    const mn_layer *prev = &net->layers[i - 1];
    net->layers[i].dx_over_input = net->layers[i].ops->backward_skips_x &&
                                   prev->ops->backward_skips_y && prev->run_act == MN_ACT_NONE;
  }
}

/* Streamed pairs hold this much of the first layer's output per call: it stays in the
 * cache (L2) between the two layers. */
enum { STREAM_BYTES = 128 * 1024 };

/* Picks the streamed pairs (mn_layer.stream_rows) when `on`. */
static void plan_streams(mn_net *net, bool on) {
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    const bool streamed_into = i > 0 && net->layers[i - 1].stream_rows > 0;
    l->stream_rows = 0;
    if (!on || streamed_into || i + 1 == net->nlayers) continue;
    const mn_layer *next = l + 1;
    if (!l->ops->per_sample || !next->ops->per_sample || !next->dx_over_input) continue;
    const size_t row_bytes = mn_shape_count(l->out) * sizeof(float);
    const size_t rows = row_bytes < STREAM_BYTES ? STREAM_BYTES / row_bytes : 1;
    l->stream_rows = rows < (size_t)net->max_batch ? (int)rows : net->max_batch;
  }
}

int mn_net_held_rows(const mn_net *net, int i) {
  return net->layers[i].stream_rows > 0 ? net->layers[i].stream_rows : net->max_batch;
}

/* (Re)allocates the layer outputs for the rows each holds. */
static int alloc_outputs(mn_net *net, mn_err *err) {
  for (int i = 0; i < net->nlayers; i++) {
    free(net->acts[i]);
    net->acts[i] = mn_alloc((size_t)mn_net_held_rows(net, i) * mn_shape_count(net->layers[i].out),
                            sizeof(float), "activations", err);
    if (!net->acts[i]) return -1;
  }
  return 0;
}

int mn_net_set_streaming(mn_net *net, bool on, mn_err *err) {
  plan_streams(net, on);
  return alloc_outputs(net, err);
}

int mn_net_create(mn_net *net, mn_config *cfg, mn_shape in, int outputs, mn_loss_kind loss,
                  int max_batch, mn_err *err) {
  memset(net, 0, sizeof *net);
  net->in_shape = in;
  net->outputs = outputs;
  net->loss = loss;
  net->max_batch = max_batch;
  for (int i = 0; i < cfg->count; i++)
    if (strcmp(cfg->sections[i].name, "layer") == 0) net->nlayers++;
  if (net->nlayers == 0) return mn_fail(err, "%s: no [layer] sections", cfg->path);
  net->layers = mn_alloc((size_t)net->nlayers, sizeof(mn_layer), "layers", err);
  net->acts = mn_alloc((size_t)net->nlayers, sizeof(float *), "activations", err);
  if (!net->layers || !net->acts) goto fail;

  mn_shape shape = in;
  size_t widest = mn_shape_count(in);
  int li = 0;
  mn_cfg_section *last = NULL;
  for (int i = 0; i < cfg->count; i++) {
    mn_cfg_section *s = &cfg->sections[i];
    if (strcmp(s->name, "layer") != 0) continue;
    mn_layer *l = &net->layers[li];
    l->index = li++;
    l->in = shape;
    if (configure_layer(l, s, err) != 0) goto fail;
    shape = l->out;
    if (mn_shape_count(shape) > widest) widest = mn_shape_count(shape);
    net->nparams += l->nparams;
    net->nstate += l->nstate;
    last = s;
  }
  plan(net);
  mn_layer *final = &net->layers[net->nlayers - 1];
  if (outputs <= 0) outputs = net->outputs = (int)mn_shape_count(final->out); /* any width */
  if (mn_shape_count(final->out) != (size_t)outputs) {
    char where[700], got[64];
    mn_layer_where(last, where, sizeof where);
    mn_shape_format(final->out, got, sizeof got);
    mn_fail(err,
            "%s: the last layer outputs %s values per sample but the data needs %d "
            "(classes or target width)",
            where, got, outputs);
    goto fail;
  }
  if (loss != MN_LOSS_MSE) {
    mn_activation fused = loss == MN_LOSS_CROSS_ENTROPY ? MN_ACT_SOFTMAX : MN_ACT_SIGMOID;
    if (final->act != MN_ACT_NONE && final->act != fused) {
      char where[700];
      mn_layer_where(last, where, sizeof where);
      mn_fail(err, "%s: loss %s needs the last layer's activation to be %s or none (got %s)", where,
              mn_loss_names[loss], mn_activation_names[fused], mn_activation_names[final->act]);
      goto fail;
    }
    final->act_in_loss = final->act == fused;
  }

  net->params = mn_alloc_params(net->nparams, sizeof(float), "parameters", err);
  net->grads = mn_alloc_params(net->nparams, sizeof(float), "gradients", err);
  net->state = mn_alloc(net->nstate, sizeof(float), "layer state", err);
  if (!net->params || !net->grads || !net->state) goto fail;
  /* Last layer first: backward completes the buffer front to back. */
  size_t offset = 0, state_offset = 0;
  for (int i = net->nlayers - 1; i >= 0; i--) {
    mn_layer *l = &net->layers[i];
    l->param_offset = offset;
    l->params = net->params + offset;
    l->grads = net->grads + offset;
    offset += l->nparams;
    l->state_offset = state_offset;
    l->state = net->state + state_offset;
    state_offset += l->nstate;
  }
  plan_streams(net, true);
  if (alloc_outputs(net, err) != 0) goto fail;
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    if (l->ops->alloc && l->ops->alloc(l, max_batch, err) != 0) goto fail;
  }
  net->dcur = mn_alloc((size_t)max_batch * widest, sizeof(float), "gradient buffer", err);
  net->dnext = mn_alloc((size_t)max_batch * widest, sizeof(float), "gradient buffer", err);
  if (!net->dcur || !net->dnext) goto fail;
  return 0;
fail:
  mn_net_destroy(net);
  return -1;
}

void mn_net_destroy(mn_net *net) {
  for (int i = 0; net->layers && i < net->nlayers; i++) {
    if (net->layers[i].ops && net->layers[i].ops->destroy)
      net->layers[i].ops->destroy(&net->layers[i]);
    else
      free(net->layers[i].priv);
    if (net->acts) free(net->acts[i]);
  }
  free(net->acts);
  free(net->layers);
  mn_free_params(net->params);
  mn_free_params(net->grads);
  free(net->state);
  free(net->dcur);
  free(net->dnext);
  memset(net, 0, sizeof *net);
}

void mn_net_init_params(mn_net *net, uint64_t seed) {
  for (int i = 0; i < net->nlayers; i++) net->layers[i].ops->init(&net->layers[i], seed);
}

const float *mn_net_forward(mn_net *net, const mn_pass *p, const float *x, int batch) {
  const float *in = x;
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    if (l->stream_rows > 0) { /* this layer and the next, stream_rows rows at a time */
      mn_layer *next = l + 1;
      const size_t in_len = mn_shape_count(l->in), out_len = mn_shape_count(next->out);
      mn_pass part = *p;
      for (int r = 0; r < batch; r += l->stream_rows) {
        const int rows = batch - r < l->stream_rows ? batch - r : l->stream_rows;
        part.row0 = p->row0 + r;
        l->ops->forward(l, &part, in + (size_t)r * in_len, net->acts[i], rows);
        next->ops->forward(next, &part, net->acts[i], net->acts[i + 1] + (size_t)r * out_len, rows);
      }
      if (p->layer_done) p->layer_done(p->layer_user, i, 0); /* the pair's time is l's */
      l = next, i++;
    } else {
      l->ops->forward(l, p, in, net->acts[i], batch);
    }
    if (!l->act_by_layer)
      mn_activation_forward(l->run_act, l->run_alpha, net->acts[i], (size_t)batch,
                            mn_shape_count(l->out));
    if (p->layer_done) p->layer_done(p->layer_user, i, 0);
    in = net->acts[i];
  }
  return in;
}

float *mn_net_output_grad(mn_net *net) { return net->dcur; }

/* Backward through a streamed pair, l = layers[i] and the layer before it: per group of
 * rows, l's input gradient goes into the first layer's small output buffer, which the first
 * layer's backward reads straight away. */
static void backward_pair(mn_net *net, const mn_pass *p, int i, const float *in, float *dy,
                          float *dx, int batch) {
  mn_layer *first = &net->layers[i - 1], *l = &net->layers[i];
  const size_t in_len = mn_shape_count(first->in), out_len = mn_shape_count(l->out);
  mn_pass part = *p;
  for (int r = 0; r < batch; r += first->stream_rows) {
    const int rows = batch - r < first->stream_rows ? batch - r : first->stream_rows;
    part.row0 = p->row0 + r;
    part.fresh_grads = p->fresh_grads && r == 0; /* the later rows add to the first's */
    l->ops->backward(l, &part, NULL, net->acts[i] + (size_t)r * out_len, dy + (size_t)r * out_len,
                     net->acts[i - 1], rows);
    first->ops->backward(first, &part, in ? in + (size_t)r * in_len : NULL, NULL, net->acts[i - 1],
                         dx ? dx + (size_t)r * in_len : NULL, rows);
  }
}

void mn_net_backward(mn_net *net, const mn_pass *pass, const float *x, int batch, float *dx) {
  /* fixed_order passes add up in a fixed order: nothing stores (the one place that says so) */
  mn_pass fixed;
  const mn_pass *p = pass;
  if (pass->fresh_grads && pass->fixed_order) fixed = *pass, fixed.fresh_grads = false, p = &fixed;
  float *dy = net->dcur; /* the loss's gradient, mn_net_output_grad() */
  for (int i = net->nlayers - 1; i >= 0; i--) {
    mn_layer *l = &net->layers[i];
    if (!l->act_in_loss)
      mn_activation_backward(l->run_act, l->run_alpha, net->acts[i], dy, (size_t)batch,
                             mn_shape_count(l->out));
    /* a streamed pair goes back as one step, from l to the layer before it */
    const int top = i > 0 && net->layers[i - 1].stream_rows > 0 ? i - 1 : i;
    const float *in = top > 0 ? net->acts[top - 1] : x;
    float *out = dx;
    if (top > 0 && net->layers[top].dx_over_input)
      out = net->acts[top - 1], in = NULL;
    else if (top > 0)
      out = dy == net->dcur ? net->dnext : net->dcur;
    if (p->fresh_grads) /* layers that only add: their slices start from zero */
      for (int j = i; j >= top; j--) {
        const mn_layer *lj = &net->layers[j];
        if (lj->nparams > 0 && !lj->ops->backward_stores_grads)
          memset(lj->grads, 0, lj->nparams * sizeof(float));
      }
    if (top < i)
      backward_pair(net, p, i, in, dy, out, batch);
    else
      l->ops->backward(l, p, in, net->acts[i], dy, out, batch);
    for (int j = i; j >= top; j--) {
      if (p->layer_done) p->layer_done(p->layer_user, j, 1); /* the pair's time is i's */
      if (p->grads_ready && net->layers[j].nparams > 0) {
        const size_t end = net->layers[j].param_offset + net->layers[j].nparams;
        p->grads_ready(p->grads_user, end, end);
      }
    }
    i = top;
    dy = out;
  }
}

void mn_net_release_buffers(mn_net *net, bool grads_unneeded, bool activations) {
  if (grads_unneeded) mn_release_pages(net->grads, net->nparams * sizeof(float));
  size_t widest = 0;
  for (int i = 0; i < net->nlayers; i++) {
    const size_t n = (size_t)net->max_batch * mn_shape_count(net->layers[i].out);
    if (activations)
      mn_release_pages(net->acts[i], (size_t)mn_net_held_rows(net, i) *
                                         mn_shape_count(net->layers[i].out) * sizeof(float));
    if (n > widest) widest = n;
  }
  mn_release_pages(net->dcur, widest * sizeof(float));
  mn_release_pages(net->dnext, widest * sizeof(float));
}

void mn_net_zero_grads(mn_net *net) {
  memset(net->grads, 0, (net->nparams + net->tail) * sizeof(float));
}

int mn_net_set_tail(mn_net *net, size_t floats, mn_err *err) {
  float *g = mn_alloc_params(net->nparams + floats, sizeof(float), "gradients", err);
  if (!g) return -1;
  memcpy(g, net->grads, net->nparams * sizeof(float));
  mn_free_params(net->grads);
  mn_net_bind_grads(net, g);
  net->tail = floats;
  return 0;
}

void mn_net_bind_grads(mn_net *net, float *grads) {
  net->grads = grads;
  for (int i = 0; i < net->nlayers; i++) net->layers[i].grads = grads + net->layers[i].param_offset;
}

int mn_net_fixed_setup(mn_net *net, int part_rows, int parts, mn_err *err) {
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    if (l->ops->fixed_setup && l->ops->fixed_setup(l, part_rows, parts, err) != 0) return -1;
  }
  return 0;
}

void mn_net_fixed_refresh(mn_net *net) {
  for (int i = 0; i < net->nlayers; i++)
    if (net->layers[i].ops->fixed_refresh) net->layers[i].ops->fixed_refresh(&net->layers[i]);
}

int mn_net_layer_at(const mn_net *net, size_t offset) {
  for (int i = 0; i < net->nlayers; i++) {
    const mn_layer *l = &net->layers[i];
    if (offset >= l->param_offset && offset < l->param_offset + l->nparams) return i;
  }
  return -1;
}

MN_CLONES size_t mn_first_nonfinite(const float *x, size_t n) {
  /* A float is NaN or infinite when all its exponent bits are set: tested in 16 integer
   * lanes, the masks ORed (one-cycle operations). The earlier x * 0 sum waited on the add's
   * latency and took 53 us for the MLP's 235K gradients, 5% of a 2-rank step; this takes 11. */
  typedef int32_t lanes __attribute__((vector_size(64)));
  enum { LANES = 16, BLOCK = 4096 };
  const lanes exponent = (lanes){0} + 0x7f800000;
  for (size_t at = 0; at < n; at += BLOCK) {
    const size_t end = n - at < BLOCK ? n : at + BLOCK;
    lanes acc = {0};
    size_t i = at;
    for (; i + LANES <= end; i += LANES) {
      lanes v;
      memcpy(&v, x + i, sizeof v);
      acc |= (v & exponent) == exponent;
    }
    int bad = 0;
    for (int j = 0; j < LANES; j++) bad |= acc[j];
    for (; i < end; i++) bad |= !isfinite(x[i]);
    if (bad)
      for (i = at; i < end; i++)
        if (!isfinite(x[i])) return i;
  }
  return n;
}

int mn_net_first_nonfinite_output(const mn_net *net, int batch) {
  for (int i = 0; i < net->nlayers; i++) {
    if (net->layers[i].stream_rows > 0) continue; /* not held: the pair is named by its first */
    const size_t n = (size_t)batch * mn_shape_count(net->layers[i].out);
    if (mn_first_nonfinite(net->acts[i], n) < n)
      return i > 0 && net->layers[i - 1].stream_rows > 0 ? i - 1 : i;
  }
  return -1;
}

mn_activation mn_net_final_act(const mn_net *net) { return net->layers[net->nlayers - 1].act; }

uint64_t mn_net_param_hash(const mn_net *net) {
  return mn_fnv1a64(MN_FNV_SEED, net->params, net->nparams * sizeof(float));
}

void mn_net_describe(const mn_net *net, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < net->nlayers && n < len; i++) {
    const mn_layer *l = &net->layers[i];
    char in[64], out[64];
    mn_shape_format(l->in, in, sizeof in);
    mn_shape_format(l->out, out, sizeof out);
    n += (size_t)snprintf(buf + n, len - n, "  %02d %-10s %-14s -> %-14s %-11s %zu params\n", i,
                          l->ops->type, in, out,
                          l->act != MN_ACT_NONE ? mn_activation_names[l->act] : "", l->nparams);
  }
}
