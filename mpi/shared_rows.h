/* shared_rows.h: the training rows held once per node in `global` mode ([data]
 * share_memory = true, the default).
 *
 * In global mode every rank reads every training row. Ranks on one node would hold as many
 * copies (16 ranks of a 40 GB dataset: 640 GB). Instead the node's ranks allocate one MPI
 * shared-memory window (MPI_Win_allocate_shared, on the node's first rank), each reads an
 * equal part of the rows into it, and all of them gather batches from the one copy. The rows
 * are read-only after the fill, so the ranks need no locks to share them. RSS counts the
 * shared pages in every rank; PSS (/proc/self/smaps_rollup) divides them among the ranks,
 * which is why metrics.jsonl reports pss_mb. */
#ifndef MN_SHARED_ROWS_H
#define MN_SHARED_ROWS_H

#include "dataset.h"
#include "world.h"

typedef struct {
  MPI_Comm node; /* this node's ranks */
  MPI_Win win;
  bool active;
} mn_shared_rows;

/* Collective over w: rows [begin, begin + n) of src into one window per node, lent to *out
 * (mn_split_borrow). Returns this rank's verdict (the caller agrees on it). */
int mn_shared_rows_load(mn_shared_rows *sr, const mn_world *w, const mn_source *src, size_t begin,
                        size_t n, mn_split *out, mn_err *err);
/* Collective: after every use of the rows. */
void mn_shared_rows_free(mn_shared_rows *sr);

#endif
