/* node_reduce.c: gradient sums in one node's shared memory (protocol in node_reduce.h). */
#define _GNU_SOURCE /* sched_yield */
#include "node_reduce.h"

#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "clones.h"

/* One cache line per counter: ranks spinning on one must not slow the writers of another. */
typedef struct {
  _Atomic uint64_t v;
  char pad[64 - sizeof(uint64_t)];
} line;

struct mn_node_ctl {
  line next, done, xdone;
  line ready[]; /* one per rank */
};

/* Where Open MPI keeps shared windows when it can (its mmap backing files). */
#define SHM_DIR "/dev/shm"

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static size_t page_size(void) {
  const long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? (size_t)p : 4096;
}

/* The window: the control block, one segment per rank, the result; page-aligned parts. */
static size_t window_bytes(size_t n, int size, size_t *ctl_bytes, size_t *seg_bytes) {
  const size_t page = page_size();
  *ctl_bytes = round_up(sizeof(mn_node_ctl) + (size_t)size * sizeof(line), page);
  *seg_bytes = round_up(n * sizeof(float), page);
  return *ctl_bytes + (size_t)(size + 1) * *seg_bytes + page; /* + page: to align the base */
}

/* The ranks of this rank's node (or of the test hook's group). */
static MPI_Comm node_comm(const mn_world *w) {
  MPI_Comm comm;
  const char *k = getenv("MPINET_TEST_NODE_RANKS");
  if (k && atoi(k) > 0)
    MPI_Comm_split(w->comm, w->rank / atoi(k), w->rank, &comm);
  else
    MPI_Comm_split_type(w->comm, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &comm);
  return comm;
}

bool mn_node_reduce_possible(const mn_world *w, size_t n, const char **why) {
  *why = NULL;
  MPI_Comm comm = node_comm(w);
  int local, range[2]; /* the fewest and (negated) the most ranks on a node */
  MPI_Comm_size(comm, &local);
  MPI_Comm_free(&comm);
  range[0] = local, range[1] = -local;
  MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_INT, MPI_MIN, w->comm);
  if (w->size < 2)
    *why = "one rank has nothing to sum";
  else if (range[0] != -range[1])
    *why = "the nodes hold different numbers of ranks";
  else if (local < 2)
    *why = "each node holds one rank";
  int ok = *why == NULL;
  if (ok) {
    /* A tmpfs that runs out of room kills a process touching a new page with SIGBUS, long
     * after the allocation succeeded (containers often mount a 64 MB /dev/shm): check the
     * room first. */
    size_t ctl, seg;
    const size_t need = window_bytes(n, local, &ctl, &seg);
    struct statvfs fs;
    if (statvfs(SHM_DIR, &fs) != 0) {
      ok = 0, *why = SHM_DIR " is missing";
    } else if ((double)fs.f_bavail * (double)fs.f_frsize < 1.25 * (double)need) {
      ok = 0, *why = "not enough room in " SHM_DIR " for the shared gradients";
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, w->comm);
  if (!ok && !*why) *why = "another rank cannot share its gradients";
  return ok != 0;
}

int mn_node_reduce_init(mn_node_reduce *r, const mn_world *w, size_t n, size_t chunk, mn_err *err) {
  memset(r, 0, sizeof *r);
  r->comm = node_comm(w);
  MPI_Comm_rank(r->comm, &r->rank);
  MPI_Comm_size(r->comm, &r->size);
  MPI_Comm_split(w->comm, r->rank, w->rank, &r->cross);
  MPI_Comm_size(r->cross, &r->nodes);
  r->n = n;
  /* slices of whole cache lines; the last one ends at n */
  r->slice_lo = round_up(n * (size_t)r->rank / (size_t)r->size, 16);
  r->slice_hi =
      r->rank + 1 == r->size ? n : round_up(n * (size_t)(r->rank + 1) / (size_t)r->size, 16);
  if (r->slice_lo > n) r->slice_lo = n;
  if (r->slice_hi > n) r->slice_hi = n;
  r->chunk = chunk < 16 ? 16 : round_up(chunk, 16); /* whole cache lines */
  r->nchunks = (n + r->chunk - 1) / r->chunk;
  r->yield = w->cpu_sharing > 1;
  size_t ctl_bytes, seg_bytes;
  const size_t total = window_bytes(n, r->size, &ctl_bytes, &seg_bytes);
  /* everything in rank 0's part, so that one base and our own offsets describe it */
  MPI_Comm_set_errhandler(r->comm, MPI_ERRORS_RETURN);
  void *mine;
  int rc = MPI_Win_allocate_shared(r->rank == 0 ? (MPI_Aint)total : 0, 1, MPI_INFO_NULL, r->comm,
                                   &mine, &r->win);
  const bool have_win = rc == MPI_SUCCESS;
  unsigned char *base = NULL;
  if (have_win) {
    MPI_Aint bytes;
    int disp;
    rc = MPI_Win_shared_query(r->win, 0, &bytes, &disp, &base);
  }
  r->seg = calloc((size_t)r->size, sizeof *r->seg);
  int ok = rc == MPI_SUCCESS && r->seg != NULL;
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, w->comm);
  if (!ok) {
    if (have_win) MPI_Win_free(&r->win);
    MPI_Comm_free(&r->comm);
    MPI_Comm_free(&r->cross);
    free(r->seg);
    memset(r, 0, sizeof *r);
    return mn_fail(err, "cannot allocate %.1f MB of shared memory for the gradients",
                   (double)total / 1e6);
  }
  const size_t page = page_size();
  base = (unsigned char *)round_up((size_t)(uintptr_t)base, page);
  r->ctl = (mn_node_ctl *)base;
  for (int q = 0; q < r->size; q++) r->seg[q] = (float *)(base + ctl_bytes + (size_t)q * seg_bytes);
  r->result = (float *)(base + ctl_bytes + (size_t)r->size * seg_bytes);
  if (r->rank == 0) {
    atomic_init(&r->ctl->next.v, 0);
    atomic_init(&r->ctl->done.v, 0);
    atomic_init(&r->ctl->xdone.v, 0);
    for (int q = 0; q < r->size; q++) atomic_init(&r->ctl->ready[q].v, 0);
  }
  memset(r->seg[r->rank], 0, n * sizeof(float));
  MPI_Barrier(r->comm);
  return 0;
}

void mn_node_reduce_free(mn_node_reduce *r) {
  if (!r->seg) return;
  MPI_Win_free(&r->win);
  MPI_Comm_free(&r->comm);
  MPI_Comm_free(&r->cross);
  free(r->seg);
  memset(r, 0, sizeof *r);
}

/* Chunk c of the sum: the segments added in rank order, so the bits do not depend on which
 * rank adds it. */
MN_CLONES static void add_chunk(const mn_node_reduce *r, size_t c) {
  const size_t lo = c * r->chunk, len = (lo + r->chunk < r->n ? lo + r->chunk : r->n) - lo;
  float *restrict out = r->result + lo;
  const float *restrict a = r->seg[0] + lo, *restrict b = r->seg[1] + lo;
  for (size_t i = 0; i < len; i++) out[i] = a[i] + b[i];
  for (int q = 2; q < r->size; q++) {
    const float *restrict s = r->seg[q] + lo;
    for (size_t i = 0; i < len; i++) out[i] += s[i];
  }
}

/* Whether every rank has published gradients up to `need` (gen * (n + 1) + float index). */
static bool covered(const mn_node_reduce *r, uint64_t need) {
  for (int q = 0; q < r->size; q++)
    if (atomic_load_explicit(&r->ctl->ready[q].v, memory_order_acquire) < need) return false;
  return true;
}

/* Claims and adds the next chunk if every rank has finished it; false when there is none. */
static bool add_one(mn_node_reduce *r) {
  const uint64_t first = r->gen * r->nchunks, end = first + r->nchunks;
  uint64_t t = atomic_load_explicit(&r->ctl->next.v, memory_order_relaxed);
  while (t >= first && t < end) {
    const size_t c = (size_t)(t - first);
    const size_t hi = (c + 1) * r->chunk < r->n ? (c + 1) * r->chunk : r->n;
    if (!covered(r, r->gen * (r->n + 1) + hi)) return false;
    /* a failed exchange leaves the current ticket in t: check that chunk instead */
    if (atomic_compare_exchange_weak_explicit(&r->ctl->next.v, &t, t + 1, memory_order_relaxed,
                                              memory_order_relaxed)) {
      add_chunk(r, c);
      atomic_fetch_add_explicit(&r->ctl->done.v, 1, memory_order_release);
      return true;
    }
  }
  return false;
}

static void publish(mn_node_reduce *r, size_t upto) {
  atomic_store_explicit(&r->ctl->ready[r->rank].v, r->gen * (r->n + 1) + upto,
                        memory_order_release);
}

void mn_node_reduce_ready(mn_node_reduce *r, size_t upto) {
  publish(r, upto);
  while (add_one(r)) {
  }
}

/* A short spin, then the CPU goes to whoever wants it (the prefetch thread, a peer rank on
 * the same core). */
static void relax(const mn_node_reduce *r, unsigned *spins) {
  if (r->yield || ++*spins > 256) {
    sched_yield();
    return;
  }
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

void mn_node_reduce_finish(mn_node_reduce *r) {
  publish(r, r->n);
  const uint64_t end = (r->gen + 1) * r->nchunks;
  unsigned spins = 0;
  while (atomic_load_explicit(&r->ctl->done.v, memory_order_acquire) < end)
    if (!add_one(r)) relax(r, &spins);
  if (r->nodes > 1) { /* this rank's slice of the node's sum, summed across the nodes */
    for (size_t lo = r->slice_lo; lo < r->slice_hi; lo += INT_MAX / 2) {
      const size_t count = r->slice_hi - lo < INT_MAX / 2 ? r->slice_hi - lo : INT_MAX / 2;
      MPI_Allreduce(MPI_IN_PLACE, r->result + lo, (int)count, MPI_FLOAT, MPI_SUM, r->cross);
    }
    atomic_fetch_add_explicit(&r->ctl->xdone.v, 1, memory_order_release);
    const uint64_t all = (r->gen + 1) * (uint64_t)r->size;
    while (atomic_load_explicit(&r->ctl->xdone.v, memory_order_acquire) < all) relax(r, &spins);
  }
  r->gen++;
}
