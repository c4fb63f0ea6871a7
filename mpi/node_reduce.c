/* node_reduce.c: gradient sums in one node's shared memory (protocol in node_reduce.h). */
#define _GNU_SOURCE /* sched_yield, O_CLOEXEC, posix_fallocate */
#include "node_reduce.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "clock.h"
#include "clones.h"

/* One cache line per counter: ranks spinning on one must not slow the writers of another. */
typedef struct {
  _Atomic uint64_t v;
  char pad[64 - sizeof(uint64_t)];
} line;

/* Each rank's line: how far its gradients are published, and when it arrived at the sum of
 * reduction gen (published the whole segment), in arrived_ns[gen % 2]. Reading it after sum
 * gen is safe: the rank rewrites that slot only when it arrives at gen + 2, after sum gen + 1,
 * which needs the reader's own gradients of gen + 1. */
typedef struct {
  _Atomic uint64_t ready;
  _Atomic uint64_t arrived_ns[2];
  char pad[64 - 3 * sizeof(uint64_t)];
} rank_line;
struct mn_node_ctl {
  line next, done, xdone;
  rank_line rank[]; /* one per rank */
};

/* Where the shared gradients live: a tmpfs on every Linux (Open MPI's own segments too). */
#define SHM_DIR "/dev/shm"

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static size_t page_size(void) {
  const long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? (size_t)p : 4096;
}

/* The window: the control block, one segment per rank, the result; page-aligned parts. */
static size_t window_bytes(size_t n, int size, size_t *ctl_bytes, size_t *seg_bytes) {
  const size_t page = page_size();
  *ctl_bytes = round_up(sizeof(mn_node_ctl) + (size_t)size * sizeof(rank_line), page);
  *seg_bytes = round_up(n * sizeof(float), page);
  return *ctl_bytes + (size_t)(size + 1) * *seg_bytes;
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

bool mn_node_reduce_possible(const mn_world *w, const char **why) {
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
  return *why == NULL; /* every rank computed the same from the same figures */
}

/* The window: a file in SHM_DIR that the node's rank 0 creates and allocates whole
 * (posix_fallocate: a full tmpfs is an error here, not a SIGBUS at some later first touch;
 * containers often mount a 64 MB /dev/shm), every rank maps, and rank 0 removes once all
 * have it open, so that a job that dies afterwards, however it dies, leaves nothing. Not
 * MPI_Win_allocate_shared: in Open MPI 4.1, when its segment cannot be created on rank 0,
 * the other ranks wait in the window's creation forever. Collective over the node; NULL
 * with *e set on failure. */
static unsigned char *map_window(const mn_node_reduce *r, size_t total, int *e) {
  char path[256] = {0};
  int fd = -1;
  bool created = false;
  if (r->rank == 0) {
    snprintf(path, sizeof path, SHM_DIR "/mpinet-grads-%ld", (long)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      *e = errno;
    } else if ((*e = posix_fallocate(fd, 0, (off_t)total)) != 0) {
      close(fd), fd = -1;
      unlink(path);
    } else {
      created = true;
    }
  }
  MPI_Bcast(path, sizeof path, MPI_CHAR, 0, r->comm);
  MPI_Bcast(e, 1, MPI_INT, 0, r->comm);
  if (*e == 0 && r->rank != 0 && (fd = open(path, O_RDWR | O_CLOEXEC)) < 0) *e = errno;
  void *p = MAP_FAILED;
  if (*e == 0 && (p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
    *e = errno;
  if (fd >= 0) close(fd);
  MPI_Barrier(r->comm); /* every rank has it open (or gave up): the name can go */
  if (created) unlink(path);
  return p == MAP_FAILED ? NULL : p;
}

/* What init took, whatever part of it init got (the mapping may be missing). */
static void release(mn_node_reduce *r) {
  if (r->base) munmap(r->base, r->bytes);
  MPI_Comm_free(&r->comm);
  MPI_Comm_free(&r->cross);
  free(r->seg);
  memset(r, 0, sizeof *r);
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
  r->bytes = total;
  r->seg = calloc((size_t)r->size, sizeof *r->seg);
  int e = r->seg ? 0 : ENOMEM;
  unsigned char *base = r->base = e ? NULL : map_window(r, total, &e);
  int ok = base != NULL;
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, w->comm);
  if (!ok) {
    release(r);
    if (!e) return mn_fail(err, "another rank could not map the shared gradients");
    return mn_fail(err, "cannot allocate %.1f MB in " SHM_DIR " for the shared gradients (%s)",
                   (double)total / 1e6, strerror(e));
  }
  r->ctl = (mn_node_ctl *)base;
  for (int q = 0; q < r->size; q++) r->seg[q] = (float *)(base + ctl_bytes + (size_t)q * seg_bytes);
  r->result = (float *)(base + ctl_bytes + (size_t)r->size * seg_bytes);
  if (r->rank == 0) {
    atomic_init(&r->ctl->next.v, 0);
    atomic_init(&r->ctl->done.v, 0);
    atomic_init(&r->ctl->xdone.v, 0);
    for (int q = 0; q < r->size; q++) {
      atomic_init(&r->ctl->rank[q].ready, 0);
      atomic_init(&r->ctl->rank[q].arrived_ns[0], 0);
      atomic_init(&r->ctl->rank[q].arrived_ns[1], 0);
    }
  }
  memset(r->seg[r->rank], 0, n * sizeof(float));
  MPI_Barrier(r->comm);
  return 0;
}

void mn_node_reduce_free(mn_node_reduce *r) {
  if (r->seg) release(r);
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
    if (atomic_load_explicit(&r->ctl->rank[q].ready, memory_order_acquire) < need) return false;
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

/* The first publication of the whole segment is this rank's arrival at the sum: its time
 * goes into its line before the publication that others wait for. */
static void publish(mn_node_reduce *r, size_t upto) {
  rank_line *own = &r->ctl->rank[r->rank];
  if (upto >= r->n && !r->arrived) {
    r->arrived = true;
    r->arrived_ns = mn_now_ns();
    atomic_store_explicit(&own->arrived_ns[r->gen % 2], r->arrived_ns, memory_order_relaxed);
  }
  atomic_store_explicit(&own->ready, r->gen * (r->n + 1) + upto, memory_order_release);
}

void mn_node_reduce_ready(mn_node_reduce *r, size_t upto) { publish(r, upto); }

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
  /* every rank's arrival was stored before its last publication, which the sum waited for */
  uint64_t last = r->arrived_ns;
  for (int q = 0; q < r->size; q++) {
    const uint64_t t =
        atomic_load_explicit(&r->ctl->rank[q].arrived_ns[r->gen % 2], memory_order_relaxed);
    if (t > last) last = t;
  }
  r->waited_s = 1e-9 * (double)(last - r->arrived_ns);
  r->arrived = false;
  if (r->nodes > 1) { /* this rank's slice of the node's sum, summed across the nodes */
    if (r->comp) {
      mn_compress_allreduce(r->comp, r->result, r->slice_lo, r->slice_hi, r->cross);
    } else {
      for (size_t lo = r->slice_lo; lo < r->slice_hi; lo += INT_MAX / 2) {
        const size_t count = r->slice_hi - lo < INT_MAX / 2 ? r->slice_hi - lo : INT_MAX / 2;
        MPI_Allreduce(MPI_IN_PLACE, r->result + lo, (int)count, MPI_FLOAT, MPI_SUM, r->cross);
      }
    }
    atomic_fetch_add_explicit(&r->ctl->xdone.v, 1, memory_order_release);
    const uint64_t all = (r->gen + 1) * (uint64_t)r->size;
    while (atomic_load_explicit(&r->ctl->xdone.v, memory_order_acquire) < all) relax(r, &spins);
  }
  r->gen++;
}
