/* layer.h: the small interface every layer type implements.
 *
 * A layer owns no parameter memory: the network hands it slices of ONE parameter buffer and
 * ONE gradient buffer. Each layer type lives in its own file under src/layers/, parses its
 * own config keys in configure(), and names its tensors for checkpoints. Adding a layer type
 * touches its own file and the registry in layer.c, nothing else. */
#ifndef MN_LAYER_H
#define MN_LAYER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "activation.h"
#include "config.h"
#include "error.h"

#define MN_MAX_RANK 3
#define MN_MAX_INPUTS 8 /* inputs of one layer (add, concat) */

/* The shape of ONE sample (the batch dimension is separate): (features), (C, H, W), (T, F). */
typedef struct {
  int rank;
  int dim[MN_MAX_RANK];
} mn_shape;

size_t mn_shape_count(mn_shape s);
/* "(1, 28, 28)" */
void mn_shape_format(mn_shape s, char *buf, size_t len);

/* A named view of part of a layer's parameters (or of its non-trained state, such as batch
 * norm's running statistics), for checkpoints and `mpinet info`. */
typedef struct {
  const char *name;
  int rank;
  size_t dim[4];
  size_t offset; /* into the layer's parameter slice, or its state slice if is_state */
  bool is_state;
} mn_tensor_info;

/* Who listens to a pass without changing a number of it: the MPI layer's sum of the
 * gradients and its timeline. Only the network calls them, but for grads_ready, which a
 * layer whose gradients become final in blocks may call too (mn_pass_grads_ready). */
typedef struct {
  /* Called during backward each time the gradients [0, upto) are final. Layers are laid out
   * last first, so upto only grows: the MPI layer starts all-reducing finished buckets while
   * backward goes on. Backward found [checked_from, upto) all finite itself (a GEMM that
   * looked as it stored them): a listener that scans for NaN and infinity may skip them
   * (checked_from >= upto: none). NULL: nobody listens. */
  void (*grads_ready)(void *user, size_t upto, size_t checked_from);
  void *grads_user;
  /* Into how many blocks of rows (at most) a large weight gradient is cut, each announced
   * as soon as it is final, for a listener that can start on them (the ranks' sum); 0 or 1:
   * one piece (a block costs OpenBLAS another copy of its operands). */
  int grads_blocks;
  /* Called after each layer's forward (backward = 0) and backward (backward = 1), its
   * activation included (the MPI layer's timeline); NULL: nobody listens. */
  void (*layer_done)(void *user, int layer, int backward);
  void *layer_user;
} mn_listeners;

/* Reproducible mode's passes. */
typedef struct {
  /* Layers with a fixed_refresh op compute every output as one fixed sum (fixed_gemm.h), so
   * its bits depend neither on the batch size nor on the CPU; they read what fixed_refresh
   * derived from the parameters (mn_net_fixed_refresh). */
  bool on;
  /* With parts > 0, backward runs once per micro-batch of a step, part = 0, 1, ..., parts -
   * 1, each of the same number of rows. A layer that defers (fixed_setup set
   * l->fixed_deferred) keeps every part's input and output gradient, leaves the gradients of
   * its first fixed_deferred parameters alone until the last part and then writes them once,
   * as the balanced binary tree of the parts' sums (fixed_gemm.h, parts), into
   * deferred_grads (laid out like the gradient buffer) instead of its own slice: the bits of
   * summing the parts' gradients in that tree, without writing each one (repro.c). */
  int parts, part;
  float *deferred_grads;
} mn_fixed_pass;

/* What a forward or backward pass knows beyond its tensors. */
typedef struct {
  bool training;
  uint64_t seed;
  long long step;             /* optimizer step: dropout masks depend on it */
  const uint64_t *sample_ids; /* dataset row of each sample in the batch (dropout masks) */
  /* The batch row a call's first sample is (the network runs a streamed pair of layers a
   * few rows at a time, mn_layer.stream_rows): per_sample layers index what they keep per
   * sample from here. 0 for a whole batch. */
  int row0;
  /* Sums n doubles over all ranks, in place (SyncBN); NULL in a single process. The core
   * never calls MPI itself: the MPI layer hands this in. */
  void (*allreduce_sum)(void *user, double *buf, size_t n);
  void *allreduce_user;
  /* The gradient buffer holds nothing to keep: backward replaces the gradients instead of
   * adding to them, so that nobody has to zero the buffer between steps (the optimizer's
   * pass wrote zeros over gradients the other ranks had just read: ~20 us a step of the
   * MLP at 2 ranks). mn_net_backward zeroes the slices of layers without
   * backward_stores_grads itself; a layer with it reads this flag, which mn_net_backward
   * clears in fixed passes (their sums must add up in a fixed order). */
  bool fresh_grads;
  mn_fixed_pass fixed;
  mn_listeners listen;
} mn_pass;

/* For a layer that finishes its gradients in blocks: [0, upto) are final now. */
static inline void mn_pass_grads_ready(const mn_pass *p, size_t upto, size_t checked_from) {
  if (p->listen.grads_ready) p->listen.grads_ready(p->listen.grads_user, upto, checked_from);
}
/* Into how many blocks such a layer may cut its gradient: 1 when nobody listens. */
static inline int mn_pass_grad_blocks(const mn_pass *p) {
  return p->listen.grads_ready && p->listen.grads_blocks > 1 ? p->listen.grads_blocks : 1;
}

typedef struct mn_layer mn_layer;

typedef struct {
  const char *type;
  /* Reads the layer's own keys from its [layer] section, checks them against l->in, sets
   * l->out, l->nparams and l->nstate; may allocate l->priv. */
  int (*configure)(mn_layer *l, mn_cfg_section *cfg, mn_err *err);
  /* Optional: allocates workspace for up to max_batch samples (once, never per step). */
  int (*alloc)(mn_layer *l, int max_batch, mn_err *err);
  /* Optional: frees l->priv and workspace. */
  void (*destroy)(mn_layer *l);
  /* Writes initial parameters and state; a pure function of the seed. */
  void (*init)(mn_layer *l, uint64_t seed);
  /* in x (B, in) -> out y (B, out), before the layer's activation (the network applies it). */
  void (*forward)(mn_layer *l, const mn_pass *p, const float *x, float *y, int batch);
  /* Given dy (B, out) w.r.t. the pre-activation output, which it may overwrite,
   * ACCUMULATES into l->grads and writes dx (B, in) unless dx is NULL. y is the output
   * after activation, x the input of the forward pass. */
  void (*backward)(mn_layer *l, const mn_pass *p, const float *x, const float *y, float *dy,
                   float *dx, int batch);
  /* Layers of two or more inputs (add, concat) implement these instead of forward and
   * backward: xs[k] is input k, (B, count(l->ins[k])); backward is given dy (B, out), which
   * it may overwrite, and writes each dxs[k] that is not NULL. */
  void (*forward_n)(mn_layer *l, const mn_pass *p, const float *const *xs, float *y, int batch);
  void (*backward_n)(mn_layer *l, const mn_pass *p, float *dy, float *const *dxs, int batch);
  /* Lists the layer's named tensors (parameters and state); returns how many. */
  int (*tensors)(const mn_layer *l, mn_tensor_info *out, int max);
  /* Optional, for fixed passes (mn_pass.fixed.on): fixed_setup allocates what they need (once), for
   * backward in `parts` parts of part_rows rows (mn_pass.fixed.parts; 0: no deferral), and sets
   * l->fixed_deferred; fixed_refresh derives what they read from the parameters (a packed
   * copy), after every change to them and before such a pass. */
  int (*fixed_setup)(mn_layer *l, int part_rows, int parts, mn_err *err);
  void (*fixed_refresh)(mn_layer *l);
  /* What the network may plan with (mn_net_create): backward reads neither its x / its y
   * (the buffer may then hold gradients during backward); each output is the largest of
   * some inputs, so that a ReLU before the layer may as well be applied after it. */
  bool backward_skips_x, backward_skips_y, outputs_are_maxima;
  /* backward stores its parameter gradients when mn_pass.fresh_grads is set, instead of
   * adding to them. */
  bool backward_stores_grads;
  /* forward can apply a ReLU to its outputs as it writes them (mn_layer.act_by_layer). */
  bool forward_applies_relu;
  /* forward and backward treat each sample on its own (no GEMM across samples) and index
   * what they keep per sample from mn_pass.row0: the network may run them a few rows at a
   * time. */
  bool per_sample;
} mn_layer_ops;

struct mn_layer {
  const mn_layer_ops *ops;
  int index;     /* position in the network, 0-based */
  char name[40]; /* "<NN>_<type>", the checkpoint group name */
  mn_shape in, out; /* in: ins[0] */
  /* The layers it reads (-1: the network's input), in the order of its `inputs` key; by
   * default the layer before it. A layer reads only layers above it: no cycles. */
  int ninputs, inputs[MN_MAX_INPUTS];
  mn_shape ins[MN_MAX_INPUTS];
  char label[32];               /* its `name`, for the graph only ("": none) */
  int readers;                  /* how many later layers read its output */
  size_t nparams, param_offset; /* slice of the network's parameter/gradient buffers */
  float *params;
  float *grads;
  size_t nstate, state_offset; /* slice of the network's state buffer (not trained) */
  float *state;
  mn_activation act; /* applied to the output by the network, for every layer type */
  float alpha;       /* the activation's parameter (leaky ReLU slope, ELU alpha) */
  bool act_in_loss;  /* the loss differentiates through `act` itself (softmax + CE) */
  /* What the network runs after this layer's forward: `act`, except that a ReLU followed by
   * a layer whose outputs are maxima of its inputs (max pooling, maxout) moves to after that
   * layer: max(relu(a), relu(b)) = relu(max(a, b)), and the gradients are the same too
   * (where the winner could differ, all candidates are <= 0 and ReLU passes no gradient).
   * A quarter of the elements for a 2x2 pool, and the layer's own output is then not needed
   * in backward. */
  mn_activation run_act;
  float run_alpha;
  /* run_act is a ReLU that this layer's forward applies itself, fused into its GEMM's stores
   * (forward_applies_relu): the network does not run it. The same bits either way. */
  bool act_by_layer;
  /* Backward writes this layer's dx over the previous layer's output, which nothing reads
   * any more by then (see backward_skips_x/y): no separate buffer for the widest gradient. */
  bool dx_over_input;
  /* The network runs this layer and the next a few samples at a time, stream_rows rows per
   * call, when both are per_sample and nothing but the next layer's forward reads this
   * layer's output (the next has dx_over_input): that output, and the gradient backward
   * writes over it, are then held for stream_rows samples instead of the whole batch and
   * stay in cache between the two layers. 0: not streamed. */
  int stream_rows;
  double l2, l1;         /* per-layer regularisation; negative: use the [train] value */
  int init_kind;         /* index into mn_init_names */
  int units;             /* dense: outputs */
  size_t fixed_deferred; /* parameters whose gradients backward defers (mn_fixed_pass) */
  void *priv;            /* layer type's own configuration and workspace */
};

/* Helpers for layer files: the section's label for messages ("job.ini:12: [layer 3]"), and
 * a failure naming the layer and both shapes. */
void mn_layer_where(const mn_cfg_section *cfg, char *buf, size_t len);
int mn_layer_shape_error(const mn_cfg_section *cfg, const mn_layer *l, mn_err *err, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));
/* The k-th name (0-based) of the section's `inputs` key, for messages. */
void mn_layer_input_name(const mn_cfg_section *cfg, int k, char *buf, size_t len);
/* Reads `init` (weight initialisation scheme) into l->init_kind. */
int mn_layer_parse_init(mn_layer *l, mn_cfg_section *cfg, mn_err *err);

/* Looks up a layer type by its config name. */
const mn_layer_ops *mn_layer_find(const char *type);
/* "dense, ..." for messages. */
const char *mn_layer_type_list(void);

/* Weight initialisation schemes, as written in configs. */
enum {
  MN_INIT_AUTO,
  MN_INIT_XAVIER_UNIFORM,
  MN_INIT_XAVIER_NORMAL,
  MN_INIT_HE_UNIFORM,
  MN_INIT_HE_NORMAL
};
extern const char *const mn_init_names[];
/* Fills w[0..n) for a layer with the given fan-in/out whose output goes through `act`
 * (parameter `alpha`). `auto` picks He normal for ReLU, leaky ReLU and ELU, Glorot uniform
 * otherwise; He's scale includes a leaky ReLU's slope. Values depend only on (seed, layer
 * index, element index). */
void mn_init_weights(float *w, size_t n, int kind, mn_activation act, float alpha, size_t fan_in,
                     size_t fan_out, uint64_t seed, int layer_index);
#endif
