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

/* The shape of ONE sample (the batch dimension is separate): (features), (C, H, W), (T, F). */
typedef struct {
  int rank;
  int dim[MN_MAX_RANK];
} mn_shape;

size_t mn_shape_count(mn_shape s);
/* "(1, 28, 28)" */
void mn_shape_format(mn_shape s, char *buf, size_t len);

/* A named view of part of a layer's parameters, for checkpoints and `mpinet info`. */
typedef struct {
  const char *name;
  int rank;
  size_t dim[4];
  size_t offset; /* into the layer's parameter slice */
} mn_tensor_info;

typedef struct mn_layer mn_layer;

typedef struct {
  const char *type;
  /* Reads the layer's keys from its [layer] section, checks them against l->in, sets l->out
   * and l->nparams. */
  int (*configure)(mn_layer *l, mn_cfg_section *cfg, mn_err *err);
  /* Writes initial values into l->params; a pure function of the seed. */
  void (*init)(mn_layer *l, uint64_t seed);
  /* in x (B, in) -> out y (B, out). */
  void (*forward)(mn_layer *l, const float *x, float *y, int batch, bool training);
  /* Given dy (B, out), which it may overwrite, ACCUMULATES into l->grads and writes dx
   * (B, in) unless dx is NULL (the first layer needs no input gradient). */
  void (*backward)(mn_layer *l, const float *x, const float *y, float *dy, float *dx, int batch);
  /* Lists the layer's named tensors; returns how many. */
  int (*tensors)(const mn_layer *l, mn_tensor_info *out, int max);
} mn_layer_ops;

struct mn_layer {
  const mn_layer_ops *ops;
  int index;     /* position in the network, 0-based */
  char name[40]; /* "<NN>_<type>", the checkpoint group name */
  mn_shape in, out;
  size_t nparams;
  size_t param_offset; /* into the network's buffers */
  float *params;       /* slice of net->params */
  float *grads;        /* slice of net->grads */
  mn_activation act;   /* fused activation applied to the output */
  bool act_in_loss;    /* the loss differentiates through `act` itself (softmax + CE) */
  int units;           /* layer-specific sizes parsed by configure() */
  int init_kind;       /* index into mn_init_names */
};

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
/* Fills w[0..n) for a layer with the given fan-in/out. `auto` picks He for ReLU and Glorot
 * otherwise. Values depend only on (seed, layer index, element index). */
void mn_init_weights(float *w, size_t n, int kind, mn_activation act, size_t fan_in, size_t fan_out,
                     uint64_t seed, int layer_index);

#endif
