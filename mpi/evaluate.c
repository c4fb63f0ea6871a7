/* evaluate.c: chunk-aligned distributed evaluation. */
#include "evaluate.h"

#include "h5util.h"
#include "watchdog.h"

#include <stdint.h>
#include <string.h>

void mn_eval_range(size_t rows, int eval_batch, int rank, int size, size_t *begin, size_t *end) {
  size_t chunks = (rows + (size_t)eval_batch - 1) / (size_t)eval_batch;
  size_t c0 = (size_t)rank * chunks / (size_t)size;
  size_t c1 = (size_t)(rank + 1) * chunks / (size_t)size;
  *begin = c0 * (size_t)eval_batch;
  *end = c1 * (size_t)eval_batch < rows ? c1 * (size_t)eval_batch : rows;
  if (*begin > *end) *begin = *end;
}

/* Calls visit (may be NULL) on each chunk of eval_batch rows after reading it into the
 * window. HDF5 runs under the process lock: a stream reader thread may be in it. */
typedef int (*chunk_fn)(mn_eval_set *set, size_t first, int count, void *ctx);

static int each_chunk(mn_eval_set *set, int eval_batch, chunk_fn visit, void *ctx, mn_err *err) {
  if (set->n == 0) return 0;
  mn_h5_lock();
  mn_source_reader *r = mn_source_reader_open(set->src, "evaluation", err);
  mn_h5_unlock();
  if (!r) return -1;
  int rc = 0;
  mn_split *win = &set->window;
  for (size_t first = 0; rc == 0 && first < set->n; first += (size_t)eval_batch) {
    const int count =
        (int)(set->n - first < (size_t)eval_batch ? set->n - first : (size_t)eval_batch);
    mn_h5_lock();
    rc = mn_source_read(r, set->begin + first, (size_t)count, win->x, win->labels, win->targets,
                        err);
    mn_h5_unlock();
    win->begin = set->begin + first;
    win->n = (size_t)count;
    if (rc == 0 && visit) rc = visit(set, first, count, ctx);
  }
  mn_h5_lock();
  mn_source_reader_close(r);
  mn_h5_unlock();
  return rc;
}

int mn_eval_open(mn_eval_set *set, const mn_source *src, int eval_batch, const mn_world *w,
                 mn_err *err) {
  memset(set, 0, sizeof *set);
  set->src = src;
  size_t end;
  mn_eval_range(src->info.rows, eval_batch, w->rank, w->size, &set->begin, &end);
  set->n = end - set->begin;
  int rc = mn_split_alloc(&set->window, src, (size_t)eval_batch, err);
  if (rc == 0) rc = each_chunk(set, eval_batch, NULL, NULL, err);
  if (rc != 0) mn_eval_close(set);
  return rc;
}

void mn_eval_close(mn_eval_set *set) { mn_split_free(&set->window); }

typedef struct {
  mn_net *net;
  float *x, *t;
  int32_t *y;
  mn_eval_sums *out;
  double *chunk_loss;
  int eval_batch;
} eval_ctx;

static int eval_chunk(mn_eval_set *set, size_t first, int count, void *ctx) {
  eval_ctx *c = ctx;
  const mn_split *win = &set->window;
  uint32_t rows[4096];
  mn_loss_stats st = {.unit_scale = c->net->target_std};
  for (int done = 0; done < count;) {
    int part = count - done < 4096 ? count - done : 4096;
    for (int i = 0; i < part; i++) rows[i] = (uint32_t)(done + i);
    mn_split_gather(win, rows, part, c->x + (size_t)done * win->row_len, c->y + done,
                    c->t + (size_t)done * win->info.classes);
    done += part;
  }
  mn_watchdog_tick();
  const mn_pass pass = {.training = false};
  const float *o = mn_net_forward(c->net, &pass, c->x, count);
  const bool labels = win->info.has_labels;
  mn_loss_compute(c->net->loss, mn_net_final_act(c->net), o, labels ? c->y : NULL,
                  labels ? NULL : c->t, count, c->net->outputs, 0.0f, NULL, &st);
  if (c->chunk_loss) c->chunk_loss[first / (size_t)c->eval_batch] = st.loss_sum;
  const int k = c->net->outputs;
  for (int i = 0; set->detail && i < count; i++) {
    const float *oi = o + (size_t)i * (size_t)k;
    if (labels) {
      set->detail[c->y[i]] += 1.0;
      set->detail[k + c->y[i]] += mn_argmax(oi, k) == c->y[i];
      continue;
    }
    for (int j = 0; j < k; j++) {
      const double d = (double)oi[j] - c->t[(size_t)i * (size_t)k + (size_t)j],
                   u = c->net->target_std ? c->net->target_std[j] : 1.0;
      set->detail[j] += d * d * u * u;
    }
  }
  c->out->loss_sum += st.loss_sum;
  c->out->correct += (double)st.correct;
  c->out->count += count;
  return 0;
}

int mn_eval_local(mn_net *net, mn_eval_set *set, int eval_batch, float *x, int32_t *y, float *t,
                  mn_eval_sums *out, double *chunk_loss, mn_err *err) {
  memset(out, 0, sizeof *out);
  eval_ctx c = {net, x, t, y, out, chunk_loss, eval_batch};
  return each_chunk(set, eval_batch, eval_chunk, &c, err);
}
