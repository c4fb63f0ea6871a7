/* evaluate.c: chunk-aligned distributed evaluation. */
#include "evaluate.h"

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

int mn_eval_load(mn_split *test, const char *path, const char *split, int eval_batch,
                 const mn_world *w, mn_err *err) {
  mn_split_info info;
  memset(test, 0, sizeof *test);
  if (mn_split_probe(path, split, &info, err) != 0) return -1;
  size_t begin, end;
  mn_eval_range(info.rows, eval_batch, w->rank, w->size, &begin, &end);
  if (begin == end) {
    test->info = info;
    test->n = 0;
    return 0;
  }
  return mn_split_load(test, path, split, begin, end, err);
}

void mn_eval_local(mn_net *net, const mn_split *test, int eval_batch, float *x, int32_t *y,
                   float *t, mn_eval_sums *out, double *chunk_loss) {
  uint32_t rows[4096];
  memset(out, 0, sizeof *out);
  for (size_t first = 0; first < test->n; first += (size_t)eval_batch) {
    int count = (int)(test->n - first < (size_t)eval_batch ? test->n - first : (size_t)eval_batch);
    mn_loss_stats st = {0};
    for (int done = 0; done < count;) {
      int part = count - done < 4096 ? count - done : 4096;
      for (int i = 0; i < part; i++) rows[i] = (uint32_t)(first + (size_t)done + (size_t)i);
      mn_split_gather(test, rows, part, x + (size_t)done * test->row_len, y + done,
                      t + (size_t)done * test->info.classes);
      done += part;
    }
    mn_watchdog_tick();
    const mn_pass pass = {.training = false};
    const float *o = mn_net_forward(net, &pass, x, count);
    mn_loss_compute(net->loss, mn_net_final_act(net), o, test->info.has_labels ? y : NULL,
                    test->info.has_labels ? NULL : t, count, net->outputs, 0.0f, NULL, &st);
    if (chunk_loss) chunk_loss[first / (size_t)eval_batch] = st.loss_sum;
    out->loss_sum += st.loss_sum;
    out->correct += (double)st.correct;
    out->count += count;
  }
}
