/* net.h: a feed-forward network built from the config's [layer] sections: a stack, or a
 * graph when layers name their inputs (`inputs`; each reads only layers above it).
 *
 * "Malloc and point": all parameters live in ONE float buffer and all gradients in ONE
 * buffer of the same layout; layers hold slices. Layers are laid out LAST layer first, so
 * backward (which runs last layer first) finishes the buffer front to back: gradient buckets
 * can be all-reduced as soon as they are complete, one allreduce covers everything, a
 * checkpoint or a broadcast is one call. Non-trained state (batch norm running statistics)
 * lives in a third buffer. Layer outputs and the gradients backward writes for them share one
 * arena, each placed by when it is live (plan.h), planned and allocated once for max_batch
 * rows; workspaces too: nothing is allocated per step. */
#ifndef MN_NET_H
#define MN_NET_H

#include "layer.h"
#include "loss.h"

typedef struct {
  int nlayers;
  mn_layer *layers;
  size_t nparams;
  float *params;
  float *grads; /* nparams, then `tail` spare floats that ride along the gradient allreduce
                   (mpi/step_record.h: per-rank faults, stop requests, step fingerprints) */
  size_t tail;
  size_t nstate;
  float *state;
  mn_shape in_shape;
  int outputs;         /* width of the last layer */
  int max_batch;       /* rows the activation buffers hold */
  bool graph;          /* some layer reads other than the layer before it */
  float *arena;        /* every buffer below; arena_bytes, planned (plan_memory in net.c) */
  size_t arena_bytes;
  size_t layer_bytes;    /* what one buffer per layer output (and per gradient) would take */
  bool backward_planned; /* planned for backward too (else forward only) */
  float **acts;        /* acts[i]: output of layer i, (max_batch, count(out_i)), or
                          (stream_rows, count(out_i)) for a streamed layer (layer.h) */
  float **douts;       /* douts[i]: the gradient w.r.t. that output, (max_batch, count(out_i));
                          acts[i] itself when the reader writes over it (dx_over_input) */
  float **spares;      /* spares[i * MN_MAX_INPUTS + k]: where layer i's backward writes input
                          k's gradient when another reader wrote it first, then adds; or NULL */
  mn_loss_kind loss;
  /* [data] standardise_targets: the outputs learn (t - mean) / std; reported losses are
   * scaled back into the targets' units with these (outputs values; borrowed; NULL: off) */
  const float *target_std;
} mn_net;

/* Builds the layers of cfg's [layer] sections for samples of shape `in`; the last layer must
 * produce `outputs` values (0: any number, e.g. for predictions). Parameters are left zero: call
 * mn_net_init_params(). */
int mn_net_create(mn_net *net, mn_config *cfg, mn_shape in, int outputs, mn_loss_kind loss,
                  int max_batch, mn_err *err);
void mn_net_destroy(mn_net *net);
void mn_net_init_params(mn_net *net, uint64_t seed);
/* Turns the streaming of layer pairs (mn_layer.stream_rows; on after mn_net_create) on or
 * off, reallocating the activations (they are not kept). Off, every output is held for the
 * whole batch: the reference the tests compare streaming with (the bits are the same). */
int mn_net_set_streaming(mn_net *net, bool on, mn_err *err);
/* Plans the arena again for forward passes alone (eval, predict): an output lives until its
 * last reader's forward, so that few are held at once. mn_net_backward may not follow; and
 * only the last layer's output can be read after a forward pass. (mn_net_create's plan
 * keeps every output until backward, for mn_net_first_nonfinite_output.) */
int mn_net_plan_forward_only(mn_net *net, mn_err *err);
/* Rows of layer i's output that net->acts[i] holds after a forward pass. */
int mn_net_held_rows(const mn_net *net, int i);

/* x (B, in) -> returns the output (B, outputs), valid until the next forward. */
const float *mn_net_forward(mn_net *net, const mn_pass *p, const float *x, int batch);
/* The buffer the loss writes d(loss)/d(output) into, before mn_net_backward(). */
float *mn_net_output_grad(mn_net *net);
/* Backpropagates the output gradient; ACCUMULATES into net->grads. If dx is not NULL it
 * receives the gradient w.r.t. the input x (gradient checks). Afterwards the outputs of
 * some layers hold gradients (mn_layer.dx_over_input): read outputs before backward. */
void mn_net_backward(mn_net *net, const mn_pass *p, const float *x, int batch, float *dx);
void mn_net_zero_grads(mn_net *net);
/* Returns the arena's memory (layer outputs and their gradients) to the system (madvise),
 * whose contents the next forward and backward rewrite: between epochs, so that evaluating
 * or building a checkpoint does not add to the process's peak memory. With grads_unneeded
 * (the caller's next backward replaces the gradients, mn_pass.fresh_grads), the parameter
 * gradients' pages too. */
void mn_net_release_buffers(mn_net *net, bool grads_unneeded);
/* Makes room for `floats` spare floats after the gradients (zeroed); layers are re-pointed
 * at the new buffer. Call before training, never per step. */
int mn_net_set_tail(mn_net *net, size_t floats, mn_err *err);
/* Points the network (and every layer's slice) at another gradient buffer of nparams + tail
 * floats; the caller owns both buffers (reproducible mode sums micro-batches in several). */
void mn_net_bind_grads(mn_net *net, float *grads);
/* Fixed passes, mn_pass.fixed (reproducible mode): setup allocates what the layers need
 * for them, once, for backward in `parts` parts of part_rows rows (0: no deferral; each
 * layer's fixed_deferred tells what it defers); refresh derives it from the parameters, after
 * every change to them. */
int mn_net_fixed_setup(mn_net *net, int part_rows, int parts, mn_err *err);
void mn_net_fixed_refresh(mn_net *net);
/* The layer whose parameter slice holds parameter index `offset`; -1 if none. */
int mn_net_layer_at(const mn_net *net, size_t offset);
/* The first layer (in forward order) whose output for the last forward pass of `batch` rows
 * holds a NaN or infinity; -1 if none (a streamed pair, whose first output is not held, is
 * named by its first layer). A diagnosis, not a per-step check; call it between forward and
 * backward. */
int mn_net_first_nonfinite_output(const mn_net *net, int batch);
/* The index of the first non-finite float of x[0, n), or n if all are finite (vectorised). */
size_t mn_first_nonfinite(const float *x, size_t n);
/* The activation of the last layer, as the loss needs to know it. */
mn_activation mn_net_final_act(const mn_net *net);
/* A 64-bit FNV-1a hash of the parameter bytes: equal replicas have equal hashes. */
uint64_t mn_net_param_hash(const mn_net *net);
/* "activation memory: 3.2 MB planned for forward and backward of 128 rows (one buffer per
 * output and gradient: 7.9 MB, 41%)" */
void mn_net_describe_memory(const mn_net *net, char *buf, size_t len);
/* One line per layer: "  02 conv2d (1, 28, 28) -> (32, 28, 28) relu  832 params"; in a
 * graph, each followed by its name and inputs ("b1 <- 01, input"). */
void mn_net_describe(const mn_net *net, char *buf, size_t len);

#endif
