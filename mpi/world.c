/* world.c: MPI initialisation, collective verdicts and job-wide aborts. */
#define _GNU_SOURCE /* sched_getaffinity */
#include "world.h"

#include <sched.h>
#include <unistd.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileutil.h"

void mn_world_init(int *argc, char ***argv, mn_world *w) {
  /* Open MPI's non-blocking allreduce (libnbc) picks its binomial tree for every in-place
   * call, which is every gradient bucket: the whole buffer goes to rank 0, which adds it
   * and sends it back, at any world size. Its ring splits the buffer, so that every rank
   * adds a part and sends a part (measured at 2 ranks here, 0.94 MB in place: 113-121 us
   * vs 225-255 us). Ring, then, unless the user chose. */
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
  /* FUNNELED: the prefetch thread never calls MPI; only the main thread does. */
  int provided;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  w->comm = MPI_COMM_WORLD;
  MPI_Comm_rank(w->comm, &w->rank);
  MPI_Comm_size(w->comm, &w->size);
  MPI_Comm node;
  MPI_Comm_split_type(w->comm, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &w->local_size);
  MPI_Comm_free(&node);
  /* mpirun binds ranks to cores by default (np <= 2) or leaves them the whole node
   * (--bind-to none); a mask of every online CPU is shared by all of the node's ranks, a
   * smaller one by its share of them */
  cpu_set_t mask;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  w->cpus = sched_getaffinity(0, sizeof mask, &mask) == 0 ? CPU_COUNT(&mask) : (int)online;
  if (w->cpus < 1) w->cpus = 1;
  const long share = online > 0 ? ((long)w->local_size * w->cpus + online - 1) / online : 1;
  w->cpu_sharing = share < 1 ? 1 : share > w->local_size ? w->local_size : (int)share;
}

void mn_world_finalize(void) { MPI_Finalize(); }

int mn_world_agree(const mn_world *w, int rc, const mn_err *err) {
  int mine = rc != 0 ? w->rank : w->size, first;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, w->comm);
  if (first == w->size) return 0;
  if (first == w->rank) {
    fprintf(stderr, "mpinet: error: %s\n", err ? err->msg : "failed");
    fflush(stderr);
  }
  return -1;
}

int mn_world_first_differing(const mn_world *w, uint64_t mine) {
  uint64_t *all = malloc((size_t)w->size * sizeof *all);
  if (!all) mn_world_abort(w, "out of memory");
  MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, w->comm);
  int first = -1;
  for (int r = 1; r < w->size && first < 0; r++)
    if (all[r] != all[0]) first = r;
  free(all);
  return first;
}

void mn_world_abort(const mn_world *w, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "mpinet: error: rank %d: %s\n", w->rank, msg);
  fflush(stderr);
  MPI_Abort(w->comm, 1);
  abort(); /* not reached */
}

char *mn_world_bcast_text(const mn_world *w, char *text) {
  long long len = w->rank == 0 && text ? (long long)strlen(text) : -1;
  MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, w->comm);
  if (len < 0) {
    free(text);
    return NULL;
  }
  if (w->rank != 0) text = calloc((size_t)len + 1, 1);
  int ok = text != NULL, all;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, w->comm);
  if (!all) {
    if (!ok) fprintf(stderr, "mpinet: error: rank %d: out of memory for the config\n", w->rank);
    free(text);
    return NULL;
  }
  MPI_Bcast(text, (int)len, MPI_CHAR, 0, w->comm);
  return text;
}

char *mn_world_bcast_file(const mn_world *w, const char *path, size_t max_bytes) {
  mn_err err;
  char *text = NULL;
  if (w->rank == 0 && !(text = mn_read_file(path, max_bytes, &err)))
    fprintf(stderr, "mpinet: error: %s\n", err.msg);
  return mn_world_bcast_text(w, text);
}
