/* grad_sync.c: allreduce and broadcast of large float buffers (chunked below INT_MAX). */
#include "grad_sync.h"

#include <limits.h>

#define CHUNK ((size_t)1 << 30)

void mn_grad_allreduce(const mn_world *w, float *buf, size_t n) {
  if (w->size == 1) return;
  for (size_t off = 0; off < n; off += CHUNK) {
    size_t count = n - off < CHUNK ? n - off : CHUNK;
    MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)count, MPI_FLOAT, MPI_SUM, w->comm);
  }
}

void mn_bcast_floats(const mn_world *w, float *buf, size_t n) {
  if (w->size == 1) return;
  for (size_t off = 0; off < n; off += CHUNK) {
    size_t count = n - off < CHUNK ? n - off : CHUNK;
    MPI_Bcast(buf + off, (int)count, MPI_FLOAT, 0, w->comm);
  }
}

void mn_allreduce_doubles(void *user, double *buf, size_t n) {
  const mn_world *w = user;
  MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, w->comm);
}

void mn_average_floats(const mn_world *w, float *buf, size_t n) {
  if (w->size == 1 || n == 0) return;
  mn_grad_allreduce(w, buf, n);
  const float inv = 1.0f / (float)w->size;
  for (size_t i = 0; i < n; i++) buf[i] *= inv;
}
