/* timeline.h: a Chrome-trace timeline of the first steps of a run ([train] timeline_steps),
 * like Horovod's timeline: one process per rank in the viewer (Perfetto, chrome://tracing),
 * with a compute track (data wait, forward and backward with each layer inside, optimizer,
 * evaluation, checkpoint write) and a communication track (each gradient bucket's
 * allreduce, from the moment it is posted to the moment it is seen complete).
 *
 * Events go into a buffer allocated at start-up (nothing is allocated per step); at the end
 * rank 0 gathers every rank's events and writes RUN_DIR/timeline.json. Times are seconds
 * since a barrier every rank passed at start-up, so tracks of different ranks line up. */
#ifndef MN_TIMELINE_H
#define MN_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "net.h"
#include "world.h"

typedef enum {
  MN_TL_DATA,
  MN_TL_FORWARD,
  MN_TL_BACKWARD,
  MN_TL_LAYER_FORWARD,  /* arg: layer */
  MN_TL_LAYER_BACKWARD, /* arg: layer */
  MN_TL_BUCKET,         /* arg: bucket */
  MN_TL_COMM_WAIT,      /* the exposed part: waiting for the allreduces after backward */
  MN_TL_OPTIMIZER,
  MN_TL_EVAL,
  MN_TL_CHECKPOINT,
  MN_TL_KINDS
} mn_tl_kind;

typedef struct {
  double t0, t1;
  int32_t step;
  int16_t kind, arg;
} mn_tl_event;

typedef struct {
  long long first, last; /* steps recorded: [first, last) */
  double origin;         /* MPI_Wtime at the start-up barrier */
  mn_tl_event *ev;
  size_t n, cap;
  double layer_t;        /* when the last layer event ended */
  long long step;        /* the step being recorded, for the layer hook */
} mn_timeline;

/* Collective. steps = 0: off (everything else is then a no-op). */
int mn_timeline_init(mn_timeline *t, const mn_world *w, const mn_net *net, int nbuckets,
                     long long first_step, long steps, mn_err *err);
bool mn_timeline_on(const mn_timeline *t, long long step);
void mn_timeline_add(mn_timeline *t, mn_tl_kind kind, int arg, long long step, double t0,
                     double t1);
/* mn_listeners.layer_done: one layer's forward (backward = 0) or backward finished now. */
void mn_timeline_layer(void *user, int layer, int backward);
/* Collective: gathers the events on rank 0, which writes `path`. */
int mn_timeline_write(mn_timeline *t, const mn_world *w, const mn_net *net, const char *path,
                      mn_err *err);
void mn_timeline_free(mn_timeline *t);

#endif
