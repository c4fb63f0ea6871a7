/* timeline.c: the Chrome-trace timeline (see timeline.h). */
#include "timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int mn_timeline_init(mn_timeline *t, const mn_world *w, const mn_net *net, int nbuckets,
                     long long first_step, long steps, mn_err *err) {
  memset(t, 0, sizeof *t);
  if (steps <= 0) return 0;
  t->first = first_step;
  t->last = first_step + steps;
  /* per step: data, forward, backward, comm wait, optimizer, every layer twice, every
   * bucket; then room for evaluations and checkpoints */
  t->cap = (size_t)steps * (size_t)(5 + 2 * net->nlayers + nbuckets) + 256;
  t->ev = mn_alloc(t->cap, sizeof *t->ev, "timeline", err);
  if (!t->ev) return -1;
  MPI_Barrier(w->comm);
  t->origin = MPI_Wtime();
  return 0;
}

bool mn_timeline_on(const mn_timeline *t, long long step) {
  return t->ev && step >= t->first && step < t->last;
}

void mn_timeline_add(mn_timeline *t, mn_tl_kind kind, int arg, long long step, double t0,
                     double t1) {
  if (!t->ev || t->n == t->cap) return;
  t->ev[t->n++] = (mn_tl_event){.t0 = t0 - t->origin,
                                .t1 = t1 - t->origin,
                                .step = (int32_t)step,
                                .kind = (int16_t)kind,
                                .arg = (int16_t)arg};
}

void mn_timeline_layer(void *user, int layer, int backward) {
  mn_timeline *t = user;
  const double now = MPI_Wtime();
  mn_timeline_add(t, backward ? MN_TL_LAYER_BACKWARD : MN_TL_LAYER_FORWARD, layer, t->step,
                  t->layer_t, now);
  t->layer_t = now;
}

static const char *const names[MN_TL_KINDS] = {
    "data wait", "forward", "backward", "", "", "", "allreduce wait", "optimizer", "evaluation",
    "checkpoint write"};

static void write_event(FILE *f, const mn_tl_event *e, int rank, const mn_net *net, bool first) {
  char name[96];
  int tid = 0;
  switch (e->kind) {
  case MN_TL_LAYER_FORWARD:
  case MN_TL_LAYER_BACKWARD:
    snprintf(name, sizeof name, "%s %s", net->layers[e->arg].name,
             e->kind == MN_TL_LAYER_FORWARD ? "forward" : "backward");
    break;
  case MN_TL_BUCKET:
    snprintf(name, sizeof name, "allreduce bucket %d", e->arg);
    tid = 1;
    break;
  default: snprintf(name, sizeof name, "%s", names[e->kind]);
  }
  fprintf(f,
          "%s\n{\"name\": \"%s\", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": %d, \"tid\": %d, "
          "\"ts\": %.3f, \"dur\": %.3f, \"args\": {\"step\": %d}}",
          first ? "" : ",", name, tid ? "comm" : "compute", rank, tid, e->t0 * 1e6,
          (e->t1 - e->t0) * 1e6, e->step + 1);
}

int mn_timeline_write(mn_timeline *t, const mn_world *w, const mn_net *net, const char *path,
                      mn_err *err) {
  if (!t->ev) return 0;
  int mine = (int)(t->n * sizeof(mn_tl_event)), *counts = NULL, *displs = NULL;
  char *all = NULL;
  if (w->rank == 0) {
    counts = calloc((size_t)w->size, sizeof *counts);
    displs = calloc((size_t)w->size, sizeof *displs);
    if (!counts || !displs) mn_world_abort(w, "out of memory");
  }
  MPI_Gather(&mine, 1, MPI_INT, counts, 1, MPI_INT, 0, w->comm);
  size_t total = 0;
  if (w->rank == 0) {
    for (int r = 0; r < w->size; r++) displs[r] = (int)total, total += (size_t)counts[r];
    all = malloc(total + 1);
    if (!all) mn_world_abort(w, "out of memory");
  }
  MPI_Gatherv(t->ev, mine, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, w->comm);
  int rc = 0;
  if (w->rank == 0) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
      rc = mn_fail(err, "%s: cannot write the timeline", tmp);
    } else {
      fprintf(f, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [");
      bool first = true;
      for (int r = 0; r < w->size; r++) {
        fprintf(f,
                "%s\n{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"args\": {\"name\": "
                "\"rank %d\"}},\n{\"name\": \"process_sort_index\", \"ph\": \"M\", \"pid\": %d, "
                "\"args\": {\"sort_index\": %d}},\n{\"name\": \"thread_name\", \"ph\": \"M\", "
                "\"pid\": %d, \"tid\": 0, \"args\": {\"name\": \"compute\"}},\n{\"name\": "
                "\"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": 1, \"args\": {\"name\": "
                "\"gradient allreduce\"}}",
                first ? "" : ",", r, r, r, r, r, r);
        first = false;
        const mn_tl_event *ev = (const mn_tl_event *)(all + displs[r]);
        for (size_t i = 0; i < (size_t)counts[r] / sizeof *ev; i++) write_event(f, &ev[i], r, net, false);
      }
      fprintf(f, "\n]}\n");
      if (fclose(f) != 0 || rename(tmp, path) != 0)
        rc = mn_fail(err, "%s: cannot write the timeline", path);
    }
  }
  free(counts), free(displs), free(all);
  return rc;
}

void mn_timeline_free(mn_timeline *t) {
  free(t->ev);
  memset(t, 0, sizeof *t);
}
