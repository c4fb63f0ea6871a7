/* shared_rows.c: one copy of the training rows per node (see shared_rows.h). */
#include "shared_rows.h"

#include <string.h>

#include "h5util.h"

int mn_shared_rows_load(mn_shared_rows *sr, const mn_world *w, const mn_source *src, size_t begin,
                        size_t n, mn_split *out, mn_err *err) {
  memset(sr, 0, sizeof *sr);
  MPI_Comm_split_type(w->comm, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &sr->node);
  int rank, size;
  MPI_Comm_rank(sr->node, &rank);
  MPI_Comm_size(sr->node, &size);
  /* x, then labels or targets, each at a 64-byte boundary */
  const size_t width = src->info.has_labels ? sizeof(int32_t) : src->info.classes * sizeof(float);
  const size_t x_bytes = (n * src->row_len * src->x_elem + 63) / 64 * 64;
  const size_t bytes = x_bytes + n * width;
  char *base = NULL;
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "false");
  const int rc_alloc =
      MPI_Win_allocate_shared(rank == 0 ? (MPI_Aint)bytes : 0, 1, info, sr->node, &base, &sr->win);
  MPI_Info_free(&info);
  if (rc_alloc != MPI_SUCCESS) {
    MPI_Comm_free(&sr->node);
    return mn_fail(err,
                   "cannot allocate %.1f MB of shared memory for the training rows (set "
                   "[data] share_memory = false)",
                   (double)bytes / 1e6);
  }
  sr->active = true;
  MPI_Aint got;
  int disp;
  MPI_Win_shared_query(sr->win, 0, &got, &disp, &base);
  void *x = base;
  int32_t *labels = src->info.has_labels ? (int32_t *)(base + x_bytes) : NULL;
  float *targets = src->info.has_labels ? NULL : (float *)(base + x_bytes);
  /* each rank of the node reads its part */
  const size_t lo = begin + (size_t)rank * n / (size_t)size,
               hi = begin + (size_t)(rank + 1) * n / (size_t)size;
  MPI_Win_lock_all(MPI_MODE_NOCHECK, sr->win);
  int rc = 0;
  if (hi > lo) {
    mn_source_reader *r = mn_source_reader_open(src, "loading", err);
    const size_t k = (size_t)src->info.classes;
    rc = r ? mn_source_read(r, lo, hi - lo, (char *)x + (lo - begin) * src->row_len * src->x_elem,
                            labels ? labels + (lo - begin) : NULL,
                            targets ? targets + (lo - begin) * k : NULL, err)
           : -1;
    mn_source_reader_close(r);
  }
  MPI_Win_sync(sr->win); /* the writes, visible to the node's other ranks after the barrier */
  MPI_Barrier(sr->node);
  MPI_Win_sync(sr->win);
  MPI_Win_unlock_all(sr->win);
  mn_split_borrow(out, src, begin, n, x, labels, targets);
  return rc;
}

void mn_shared_rows_free(mn_shared_rows *sr) {
  if (!sr->active) return;
  MPI_Win_free(&sr->win);
  MPI_Comm_free(&sr->node);
  sr->active = false;
}
