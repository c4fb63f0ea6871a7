/* net.c: building the layer list, the single parameter/gradient/state buffers, forward and
 * backward with the activations the network applies for every layer. */
#include "net.h"

#include "clones.h"
#include "hash.h"
#include "plan.h"

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

/* Names a layer may not take: they name other things in a config (`input` is the network's
 * input in `inputs`; `layerN` is the N-th [layer] for --set). */
static bool reserved_name(const char *name) {
  static const char *const words[] = {"input", "data", "train", "checkpoint", "augment", NULL};
  for (int i = 0; words[i]; i++)
    if (strcmp(name, words[i]) == 0) return true;
  return strncmp(name, "layer", 5) == 0 && name[5] &&
         strspn(name + 5, "0123456789") == strlen(name + 5);
}

/* The [layer] section after `s` whose name is `name`, or NULL. */
static const mn_cfg_section *later_named(const mn_config *cfg, const mn_cfg_section *s,
                                         const char *name) {
  for (const mn_cfg_section *t = s + 1; t < cfg->sections + cfg->count; t++) {
    const mn_cfg_entry *e = strcmp(t->name, "layer") == 0 ? mn_cfg_find(t, "name") : NULL;
    if (e && strcmp(e->value, name) == 0) return t;
  }
  return NULL;
}

/* Reads `name` and `inputs`: the layer's label and the layers it reads (by default the one
 * before it), each above it; sets l->ninputs, l->inputs, l->ins and l->in. */
static int configure_graph(mn_net *net, mn_layer *l, const mn_config *cfg, mn_cfg_section *s,
                           mn_err *err) {
  const char *name, *list;
  char where[700];
  if (mn_cfg_string(s, "name", "", &name, err) != 0 ||
      mn_cfg_string(s, "inputs", "", &list, err) != 0)
    return -1;
  if (name[0]) {
    mn_cfg_where(s, mn_cfg_find(s, "name"), where, sizeof where);
    if (strlen(name) >= sizeof l->label ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
            strlen(name))
      return mn_fail(err, "%s: '%s': a name is up to %zu letters, digits, '_', '-' or '.'", where,
                     name, sizeof l->label - 1);
    if (reserved_name(name))
      return mn_fail(err,
                     "%s: '%s' is reserved (input, data, train, checkpoint, augment and layerN "
                     "name other things)",
                     where, name);
    for (int j = 0; j < l->index; j++)
      if (strcmp(net->layers[j].label, name) == 0)
        return mn_fail(err, "%s: '%s' already names layer %d", where, name, j + 1);
    snprintf(l->label, sizeof l->label, "%s", name);
  }
  l->ninputs = 1, l->inputs[0] = l->index - 1;
  if (list[0]) {
    mn_cfg_where(s, mn_cfg_find(s, "inputs"), where, sizeof where);
    l->ninputs = 0;
    for (const char *p = list;; p++) {
      p += strspn(p, " \t");
      const size_t len = strcspn(p, ", \t");
      char item[64];
      snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), p);
      p += len;
      p += strspn(p, " \t");
      if (!item[0] || (*p && *p != ','))
        return mn_fail(err, "%s: '%s' is not a list of layer names (inputs = a, b, ...)", where,
                       list);
      if (l->ninputs == MN_MAX_INPUTS)
        return mn_fail(err, "%s: at most %d inputs", where, MN_MAX_INPUTS);
      int from = strcmp(item, "input") == 0 ? -1 : -2;
      for (int j = 0; j < l->index && from == -2; j++)
        if (strcmp(net->layers[j].label, item) == 0) from = j;
      if (from == -2) {
        const mn_cfg_section *t = later_named(cfg, s, item);
        if (t)
          return mn_fail(err,
                         "%s: '%s' is layer %d (line %d), below this one: a layer reads only "
                         "layers above it",
                         where, item, t->ordinal, t->line);
        return mn_fail(err, "%s: no layer above this one is named '%s' (nor is it 'input')", where,
                       item);
      }
      for (int k = 0; k < l->ninputs; k++)
        if (l->inputs[k] == from) return mn_fail(err, "%s: '%s' is named twice", where, item);
      l->inputs[l->ninputs++] = from;
      if (!*p) break;
    }
  }
  for (int k = 0; k < l->ninputs; k++) {
    const int j = l->inputs[k];
    l->ins[k] = j < 0 ? net->in_shape : net->layers[j].out;
    if (j >= 0) net->layers[j].readers++;
    if (j != l->index - 1) net->graph = true;
  }
  l->in = l->ins[0];
  return 0;
}

static int configure_layer(mn_net *net, mn_layer *l, const mn_config *cfg, mn_cfg_section *s,
                           mn_err *err) {
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
  if (configure_graph(net, l, cfg, s, err) != 0) return -1;
  if (!l->ops->forward_n && l->ninputs != 1)
    return mn_fail(err, "%s: %s reads one input, and inputs names %d (add or concat merge them)",
                   where, l->ops->type, l->ninputs);
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

/* Layer i reads the layer before it, and nothing else reads that layer: a link of a stack,
 * where the network may fuse or stream the two. */
static bool chained(const mn_net *net, int i) {
  const mn_layer *l = &net->layers[i];
  return i > 0 && l->ninputs == 1 && l->inputs[0] == i - 1 && net->layers[i - 1].readers == 1;
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
    if (chained(net, i + 1) && l->act == MN_ACT_RELU && next->ops->outputs_are_maxima &&
        next->act == MN_ACT_NONE)
      next->run_act = MN_ACT_RELU, l->run_act = MN_ACT_NONE;
  }
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    l->act_by_layer = l->ops->forward_applies_relu && l->run_act == MN_ACT_RELU;
  }
  for (int i = 1; i < net->nlayers; i++) {
    const mn_layer *prev = &net->layers[i - 1];
    net->layers[i].dx_over_input = chained(net, i) && net->layers[i].ops->backward_skips_x &&
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

/* The steps of a pass, for the memory plan: layer i's forward is step i (a streamed pair's
 * both at the first's), the loss step n, layer i's backward step 2n - i (a streamed pair's
 * both at the second's). */
static int step_forward(const mn_net *net, int i) {
  return i > 0 && net->layers[i - 1].stream_rows > 0 ? i - 1 : i;
}
static int step_backward(const mn_net *net, int i) {
  return 2 * net->nlayers - (net->layers[i].stream_rows > 0 ? i + 1 : i);
}

/* The reader of layer j's output (-1: of the input) whose backward runs first, and so
 * writes j's gradient first; the others add theirs. */
static int first_writer(const mn_net *net, int j) {
  for (int r = net->nlayers - 1; r > j; r--)
    for (int k = 0; k < net->layers[r].ninputs; k++)
      if (net->layers[r].inputs[k] == j) return r;
  return -1;
}

static int imax(int a, int b) { return a > b ? a : b; }

/* Plans and allocates the layer outputs and, with `backward`, the gradients backward writes
 * for them: one arena, each buffer placed by when it is live (plan.h). Values: A_i, the
 * output of layer i; G_i, the gradient w.r.t. it (A_i's own buffer when the reader writes it
 * over the dead output, dx_over_input); S_ik, where layer i writes the gradient of its input
 * k when another reader wrote that gradient first (then added to it). */
static int plan_memory(mn_net *net, bool backward, mn_err *err) {
  const int n = net->nlayers, nv = 2 * n + n * MN_MAX_INPUTS;
  mn_plan_value *v = mn_alloc((size_t)nv, sizeof *v, "memory plan", err);
  if (!v) return -1;
  const size_t batch = (size_t)net->max_batch;
  net->layer_bytes = 0;
  for (int i = 0; i < n; i++) {
    const mn_layer *l = &net->layers[i];
    mn_plan_value *a = &v[i];
    a->bytes = (size_t)mn_net_held_rows(net, i) * mn_shape_count(l->out) * sizeof(float);
    net->layer_bytes += a->bytes;
    a->first = a->last = step_forward(net, i);
    if (i == n - 1 || backward) a->last = n; /* the caller reads the output; see net.h */
    if (backward && (!l->ops->backward_skips_y || (l->run_act != MN_ACT_NONE && !l->act_in_loss)))
      a->last = imax(a->last, step_backward(net, i));
  }
  for (int r = 0; r < n; r++) {
    const mn_layer *l = &net->layers[r];
    for (int k = 0; k < l->ninputs; k++) {
      const int j = l->inputs[k];
      if (backward && first_writer(net, j) != r) { /* (j = -1: dx of a gradient check) */
        mn_plan_value *sp = &v[2 * n + r * MN_MAX_INPUTS + k];
        sp->bytes = batch * mn_shape_count(l->ins[k]) * sizeof(float);
        sp->first = sp->last = step_backward(net, r);
      }
      if (j < 0) continue;
      v[j].last = imax(v[j].last, step_forward(net, r));
      if (backward && !l->ops->backward_skips_x) v[j].last = imax(v[j].last, step_backward(net, r));
    }
  }
  for (int i = 0; backward && i < n; i++) {
    mn_plan_value *g = &v[n + i];
    if (i + 1 < n && net->layers[i + 1].dx_over_input) {
      v[i].last = imax(v[i].last, step_backward(net, i));
      continue;
    }
    g->bytes = batch * mn_shape_count(net->layers[i].out) * sizeof(float);
    net->layer_bytes += g->bytes;
    g->first = i == n - 1 ? n : step_backward(net, first_writer(net, i));
    g->last = step_backward(net, i);
  }
  const size_t bytes = mn_plan_place(v, nv);
  mn_free_params(net->arena);
  net->arena = mn_alloc_params(bytes / sizeof(float), sizeof(float), "activations", err);
  if (!net->arena) {
    free(v);
    return -1;
  }
  net->arena_bytes = bytes;
  net->backward_planned = backward;
  for (int i = 0; i < n; i++) {
    net->acts[i] = net->arena + v[i].offset / sizeof(float);
    net->douts[i] = !backward             ? NULL
                    : v[n + i].bytes == 0 ? net->acts[i]
                                          : net->arena + v[n + i].offset / sizeof(float);
    for (int k = 0; k < MN_MAX_INPUTS; k++) {
      const mn_plan_value *sp = &v[2 * n + i * MN_MAX_INPUTS + k];
      net->spares[i * MN_MAX_INPUTS + k] =
          sp->bytes ? net->arena + sp->offset / sizeof(float) : NULL;
    }
  }
  free(v);
  return 0;
}

int mn_net_set_streaming(mn_net *net, bool on, mn_err *err) {
  plan_streams(net, on);
  return plan_memory(net, net->backward_planned, err);
}

int mn_net_plan_forward_only(mn_net *net, mn_err *err) { return plan_memory(net, false, err); }

/* Fails on the first layer but the last whose output no layer reads. */
static int check_read(const mn_net *net, mn_cfg_section *const *secs, mn_err *err) {
  for (int i = 0; i + 1 < net->nlayers; i++) {
    if (net->layers[i].readers > 0) continue;
    char where[700];
    mn_layer_where(secs[i], where, sizeof where);
    return mn_fail(err,
                   "%s: no layer reads this layer's output%s%s%s (only the last layer's may go "
                   "unread: name it in a later layer's inputs)",
                   where, net->layers[i].label[0] ? " ('" : "", net->layers[i].label,
                   net->layers[i].label[0] ? "')" : "");
  }
  return 0;
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
  const size_t n = (size_t)net->nlayers;
  mn_cfg_section **secs = mn_alloc(n, sizeof *secs, "layers", err);
  net->layers = mn_alloc(n, sizeof(mn_layer), "layers", err);
  net->acts = mn_alloc(n, sizeof(float *), "activations", err);
  net->douts = mn_alloc(n, sizeof(float *), "activations", err);
  net->spares = mn_alloc(n * MN_MAX_INPUTS, sizeof(float *), "activations", err);
  if (!secs || !net->layers || !net->acts || !net->douts || !net->spares) goto fail;

  int li = 0;
  for (int i = 0; i < cfg->count; i++) {
    mn_cfg_section *s = &cfg->sections[i];
    if (strcmp(s->name, "layer") != 0) continue;
    mn_layer *l = &net->layers[li];
    secs[li] = s;
    l->index = li++;
    if (configure_layer(net, l, cfg, s, err) != 0) goto fail;
    net->nparams += l->nparams;
    net->nstate += l->nstate;
  }
  if (check_read(net, secs, err) != 0) goto fail;
  plan(net);
  mn_layer *final = &net->layers[net->nlayers - 1];
  mn_cfg_section *last = secs[net->nlayers - 1];
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
  if (plan_memory(net, true, err) != 0) goto fail;
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    if (l->ops->alloc && l->ops->alloc(l, max_batch, err) != 0) goto fail;
  }
  free(secs);
  return 0;
fail:
  free(secs);
  mn_net_destroy(net);
  return -1;
}

void mn_net_destroy(mn_net *net) {
  for (int i = 0; net->layers && i < net->nlayers; i++) {
    if (net->layers[i].ops && net->layers[i].ops->destroy)
      net->layers[i].ops->destroy(&net->layers[i]);
    else
      free(net->layers[i].priv);
  }
  free(net->acts);
  free(net->douts);
  free(net->spares);
  mn_free_params(net->arena);
  free(net->layers);
  mn_free_params(net->params);
  mn_free_params(net->grads);
  free(net->state);
  memset(net, 0, sizeof *net);
}

void mn_net_init_params(mn_net *net, uint64_t seed) {
  for (int i = 0; i < net->nlayers; i++) net->layers[i].ops->init(&net->layers[i], seed);
}

/* Input k of layer l: the network's input or an earlier layer's output. */
static const float *input_of(const mn_net *net, const mn_layer *l, int k, const float *x) {
  return l->inputs[k] < 0 ? x : net->acts[l->inputs[k]];
}

const float *mn_net_forward(mn_net *net, const mn_pass *p, const float *x, int batch) {
  for (int i = 0; i < net->nlayers; i++) {
    mn_layer *l = &net->layers[i];
    const float *in = input_of(net, l, 0, x);
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
      if (p->listen.layer_done) p->listen.layer_done(p->listen.layer_user, i, 0); /* l's time */
      l = next, i++;
    } else if (l->ops->forward_n) {
      const float *xs[MN_MAX_INPUTS];
      for (int k = 0; k < l->ninputs; k++) xs[k] = input_of(net, l, k, x);
      l->ops->forward_n(l, p, xs, net->acts[i], batch);
    } else {
      l->ops->forward(l, p, in, net->acts[i], batch);
    }
    if (!l->act_by_layer)
      mn_activation_forward(l->run_act, l->run_alpha, net->acts[i], (size_t)batch,
                            mn_shape_count(l->out));
    if (p->listen.layer_done) p->listen.layer_done(p->listen.layer_user, i, 0);
  }
  return net->acts[net->nlayers - 1];
}

float *mn_net_output_grad(mn_net *net) { return net->douts[net->nlayers - 1]; }

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
  /* fixed passes add up in a fixed order: nothing stores (the one place that says so) */
  mn_pass fixed;
  const mn_pass *p = pass;
  if (pass->fresh_grads && pass->fixed.on) fixed = *pass, fixed.fresh_grads = false, p = &fixed;
  for (int i = net->nlayers - 1; i >= 0; i--) {
    mn_layer *l = &net->layers[i];
    float *dy = net->douts[i]; /* the loss's gradient for the last (mn_net_output_grad) */
    if (!l->act_in_loss)
      mn_activation_backward(l->run_act, l->run_alpha, net->acts[i], dy, (size_t)batch,
                             mn_shape_count(l->out));
    /* a streamed pair goes back as one step, from l to the layer before it */
    const int top = i > 0 && net->layers[i - 1].stream_rows > 0 ? i - 1 : i;
    const mn_layer *t = &net->layers[top];
    /* where each input's gradient goes: its buffer, or a spare when another reader wrote
     * that first (added below) */
    float *dxs[MN_MAX_INPUTS], *sum_into[MN_MAX_INPUTS];
    for (int k = 0; k < t->ninputs; k++) {
      const int j = t->inputs[k];
      sum_into[k] = j < 0 ? dx : net->douts[j];
      float *spare = net->spares[top * MN_MAX_INPUTS + k];
      dxs[k] = spare && sum_into[k] ? spare : sum_into[k];
    }
    if (p->fresh_grads) /* layers that only add: their slices start from zero */
      for (int j = i; j >= top; j--) {
        const mn_layer *lj = &net->layers[j];
        if (lj->nparams > 0 && !lj->ops->backward_stores_grads)
          memset(lj->grads, 0, lj->nparams * sizeof(float));
      }
    /* a layer that writes its dx over its input's dead output does not read that input */
    const float *in = t->dx_over_input ? NULL : input_of(net, t, 0, x);
    if (top < i)
      backward_pair(net, p, i, in, dy, dxs[0], batch);
    else if (l->ops->backward_n)
      l->ops->backward_n(l, p, dy, dxs, batch);
    else
      l->ops->backward(l, p, in, net->acts[i], dy, dxs[0], batch);
    for (int k = 0; k < t->ninputs; k++)
      if (dxs[k] != sum_into[k]) {
        const size_t len = (size_t)batch * mn_shape_count(t->ins[k]);
        for (size_t e = 0; e < len; e++) sum_into[k][e] += dxs[k][e];
      }
    for (int j = i; j >= top; j--) {
      if (p->listen.layer_done) p->listen.layer_done(p->listen.layer_user, j, 1); /* i's time */
      if (net->layers[j].nparams > 0) {
        const size_t end = net->layers[j].param_offset + net->layers[j].nparams;
        mn_pass_grads_ready(p, end, end);
      }
    }
    i = top;
  }
}

void mn_net_release_buffers(mn_net *net, bool grads_unneeded) {
  if (grads_unneeded) mn_release_pages(net->grads, net->nparams * sizeof(float));
  mn_release_pages(net->arena, net->arena_bytes);
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

void mn_net_describe_memory(const mn_net *net, char *buf, size_t len) {
  snprintf(buf, len,
           "activation memory: %.1f MB planned for %s of %d rows (one buffer per output%s: %.1f "
           "MB, %.0f%%)",
           (double)net->arena_bytes / 1e6,
           net->backward_planned ? "forward and backward" : "forward passes", net->max_batch,
           net->backward_planned ? " and gradient" : "", (double)net->layer_bytes / 1e6,
           net->layer_bytes ? 100.0 * (double)net->arena_bytes / (double)net->layer_bytes : 0.0);
}

void mn_net_describe(const mn_net *net, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < net->nlayers && n < len; i++) {
    const mn_layer *l = &net->layers[i];
    char in[64], out[64];
    mn_shape_format(l->in, in, sizeof in);
    mn_shape_format(l->out, out, sizeof out);
    n += (size_t)snprintf(buf + n, len - n, "  %02d %-14s %-14s -> %-14s %-11s %zu params", i,
                          l->ops->type, in, out,
                          l->act != MN_ACT_NONE ? mn_activation_names[l->act] : "", l->nparams);
    if (net->graph && n < len) { /* "  b1 <- 00 (stem), input" */
      n += (size_t)snprintf(buf + n, len - n, "  %s%s<-", l->label, l->label[0] ? " " : "");
      for (int k = 0; k < l->ninputs && n < len; k++) {
        const int j = l->inputs[k];
        if (j < 0)
          n += (size_t)snprintf(buf + n, len - n, "%s input", k ? "," : "");
        else
          n += (size_t)snprintf(buf + n, len - n, "%s %02d%s%s%s", k ? "," : "", j,
                                net->layers[j].label[0] ? " (" : "", net->layers[j].label,
                                net->layers[j].label[0] ? ")" : "");
      }
    }
    if (n < len) n += (size_t)snprintf(buf + n, len - n, "\n");
  }
}
