/* grad_sync.c: bucketed, overlapped gradient allreduce; buffer broadcasts and reductions. */
#include "grad_sync.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "net.h"
#include "sim.h"

#define CHUNK ((size_t)1 << 30) /* MPI counts are int: split larger buffers */

void mn_grad_sync_init(mn_grad_sync *s, const mn_world *w, float *buf, size_t n,
                       size_t check, size_t bucket_floats, bool overlap) {
  s->w = w;
  s->buf = buf;
  s->n = n;
  s->check = check < n ? check : n;
  s->scanned = 0;
  s->first_bad = SIZE_MAX;
  s->overlap = overlap;
  if (bucket_floats == 0 || bucket_floats > CHUNK) bucket_floats = n < CHUNK ? n : CHUNK;
  /* never more than MN_MAX_BUCKETS buckets */
  if ((n + bucket_floats - 1) / bucket_floats > MN_MAX_BUCKETS)
    bucket_floats = (n + MN_MAX_BUCKETS - 1) / MN_MAX_BUCKETS;
  s->bucket_floats = bucket_floats;
  s->nbuckets = 0;
  for (size_t at = 0; at < n; at += bucket_floats) s->bounds[s->nbuckets++] = at;
  s->bounds[s->nbuckets] = n;
  s->posted = 0;
  s->node = NULL;
  s->comp = NULL;
  s->packed = 0;
}

void mn_grad_sync_use_node(mn_grad_sync *s, mn_node_reduce *node) { s->node = node; }

void mn_grad_sync_compress(mn_grad_sync *s, mn_compress *comp) {
  s->comp = comp;
  if (s->node) s->node->comp = comp;
}

/* Rounds this step's gradients up to `upto` into the 16-bit buffer (once each). */
static void pack_to(mn_grad_sync *s, size_t upto) {
  if (upto > s->comp->n) upto = s->comp->n;
  if (upto > s->packed) mn_compress_pack(s->comp, s->buf, s->packed, upto);
  if (upto > s->packed) s->packed = upto;
}

/* Bucket b: its gradients in 16 bits when compressing, and then the last bucket carries the
 * whole float32 range after them (the tail: written after backward, like the last bucket)
 * in req[nbuckets]. */
static void post(mn_grad_sync *s, int b) {
  const size_t lo = s->bounds[b], hi = s->bounds[b + 1];
  if (s->timing) s->posted_at[b] = MPI_Wtime(), s->done_at[b] = 0.0;
  if (!s->comp) {
    MPI_Iallreduce(MPI_IN_PLACE, s->buf + lo, (int)(hi - lo), MPI_FLOAT, MPI_SUM, s->w->comm,
                   &s->req[b]);
    return;
  }
  const size_t n16 = s->comp->n, lo16 = lo < n16 ? lo : n16, hi16 = hi < n16 ? hi : n16;
  pack_to(s, hi16);
  s->req[b] = MPI_REQUEST_NULL;
  if (hi16 > lo16)
    MPI_Iallreduce(MPI_IN_PLACE, s->comp->half + lo16, (int)(hi16 - lo16), MPI_UINT16_T,
                   s->comp->op, s->w->comm, &s->req[b]);
  if (b == s->nbuckets - 1)
    MPI_Iallreduce(MPI_IN_PLACE, s->buf + n16, (int)(s->n - n16), MPI_FLOAT, MPI_SUM, s->w->comm,
                   &s->req[s->nbuckets]);
}

void mn_grad_sync_begin(mn_grad_sync *s) {
  s->packed = 0;
  s->posted = 0;
  s->scanned = 0;
  s->first_bad = SIZE_MAX;
}

static void scan(mn_grad_sync *s, size_t upto) {
  if (upto > s->check) upto = s->check;
  if (upto <= s->scanned) return;
  if (s->first_bad == SIZE_MAX) {
    size_t bad = s->scanned + mn_first_nonfinite(s->buf + s->scanned, upto - s->scanned);
    if (bad < upto) s->first_bad = bad;
  }
  s->scanned = upto;
}

void mn_grad_sync_scan_rest(mn_grad_sync *s) { scan(s, s->check); }

void mn_grad_sync_ready(void *user, size_t upto, size_t checked_from) {
  mn_grad_sync *s = user;
  scan(s, checked_from < upto ? checked_from : upto);
  /* backward's own look at [checked_from, upto) found them finite: no second pass */
  if (checked_from < upto && s->scanned == checked_from)
    s->scanned = upto < s->check ? upto : s->check;
  if (s->node) {
    mn_node_reduce_ready(s->node, upto);
    return;
  }
  if (!s->overlap || s->w->size == 1) return;
  /* the last bucket also holds the tail flags: it waits for finish() */
  while (s->posted < s->nbuckets - 1 && s->bounds[s->posted + 1] <= upto) post(s, s->posted++);
  if (s->posted > 0 && s->timing) {
    for (int b = 0; b < s->posted; b++)
      if (s->done_at[b] == 0.0) {
        int done;
        MPI_Test(&s->req[b], &done, MPI_STATUS_IGNORE);
        if (done) s->done_at[b] = MPI_Wtime();
      }
  } else if (s->posted > 0) {
    int done;
    MPI_Testall(s->posted, s->req, &done, MPI_STATUSES_IGNORE);
  }
}

void mn_grad_sync_finish(mn_grad_sync *s) {
  scan(s, s->check);
  s->timed = 0;
  if (s->w->size == 1) return;
  if (s->node || !s->overlap) { /* the whole buffer at once: one timed "bucket" */
    const double t0 = s->timing ? MPI_Wtime() : 0.0;
    if (s->node) {
      mn_node_reduce_finish(s->node);
    } else if (s->comp) {
      const size_t n16 = s->comp->n;
      pack_to(s, n16);
      mn_compress_sum(s->comp, 0, n16, s->w->comm);
      mn_compress_unpack(s->comp, s->buf, 0, n16);
      mn_grad_allreduce(s->w, s->buf + n16, s->n - n16); /* the tail, in float32 */
    } else {
      mn_grad_allreduce(s->w, s->buf, s->n);
    }
    if (s->timing) s->posted_at[0] = t0, s->done_at[0] = MPI_Wtime(), s->timed = 1;
    return;
  }
  while (s->posted < s->nbuckets) post(s, s->posted++);
  const int reqs = s->nbuckets + (s->comp ? 1 : 0); /* the tail's own, when compressed */
  if (!s->timing) {
    MPI_Waitall(reqs, s->req, MPI_STATUSES_IGNORE);
  } else {
    for (int b = 0; b < s->nbuckets; b++)
      if (s->done_at[b] == 0.0) {
        MPI_Wait(&s->req[b], MPI_STATUS_IGNORE);
        s->done_at[b] = MPI_Wtime();
      }
    if (s->comp) MPI_Wait(&s->req[s->nbuckets], MPI_STATUS_IGNORE);
    s->timed = s->nbuckets;
  }
  if (s->comp) mn_compress_unpack(s->comp, s->buf, 0, s->comp->n);
}

size_t mn_grad_sync_pick_bucket(const mn_world *w, size_t n, double *chosen_mb) {
  static const size_t sizes[] = {1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24}; /* floats */
  const int nsizes = sizeof sizes / sizeof sizes[0];
  double rate[8] = {0};
  size_t biggest = n < sizes[nsizes - 1] ? n : sizes[nsizes - 1];
  float *scratch = calloc(biggest, sizeof(float));
  if (!scratch || w->size == 1) {
    free(scratch);
    *chosen_mb = (double)n * 4 / 1e6;
    return n;
  }
  double best = 0.0;
  for (int i = 0; i < nsizes && sizes[i] <= biggest; i++) {
    double t = 1e30;
    for (int rep = 0; rep < 5; rep++) { /* the fastest of 5, agreed by all ranks */
      MPI_Barrier(w->comm);
      double t0 = MPI_Wtime();
      MPI_Allreduce(MPI_IN_PLACE, scratch, (int)sizes[i], MPI_FLOAT, MPI_SUM, w->comm);
      double dt = MPI_Wtime() - t0;
      MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, w->comm);
      if (dt < t) t = dt;
    }
    rate[i] = (double)sizes[i] / t;
    if (rate[i] > best) best = rate[i];
  }
  free(scratch);
  size_t pick = biggest;
  for (int i = 0; i < nsizes && sizes[i] <= biggest; i++)
    if (rate[i] >= 0.8 * best) {
      pick = sizes[i];
      break;
    }
  *chosen_mb = (double)pick * 4 / 1e6;
  return pick;
}

int mn_grad_sync_tune(mn_grad_sync *s, void (*dry_step)(void *user), void *user, int rounds) {
  enum { MAX_CANDIDATES = 5 };
  const mn_world *w = s->w;
  const size_t n = s->n;
  double rate_mb;
  size_t sizes[MAX_CANDIDATES] = {n, mn_grad_sync_pick_bucket(w, n, &rate_mb), n / 2, n / 4, n / 8};
  bool overlap[MAX_CANDIDATES] = {false, true, true, true, true};
  int count = 0;
  for (int i = 0; i < MAX_CANDIDATES; i++) { /* drop tiny and repeated sizes */
    bool dup = false;
    for (int j = 0; j < count; j++) dup |= sizes[j] == sizes[i] && overlap[j] == overlap[i];
    if ((i == 0 || sizes[i] >= 1024) && !dup)
      sizes[count] = sizes[i], overlap[count++] = overlap[i];
  }
  double seconds[MAX_CANDIDATES] = {0};
  float *const buf = s->buf;
  const size_t check = s->check;
  for (int r = 0; r < rounds; r++)
    for (int c = 0; c < count; c++) {
      mn_grad_sync_init(s, w, buf, n, check, sizes[c], overlap[c]);
      MPI_Barrier(w->comm);
      double t0 = MPI_Wtime();
      dry_step(user);
      seconds[c] += MPI_Wtime() - t0;
    }
  MPI_Allreduce(MPI_IN_PLACE, seconds, count, MPI_DOUBLE, MPI_MAX, w->comm);
  int best = 0;
  for (int c = 1; c < count; c++)
    if (seconds[c] < seconds[best]) best = c;
  mn_grad_sync_init(s, w, buf, n, check, sizes[best], overlap[best]);
  return count;
}

void mn_grad_allreduce(const mn_world *w, float *buf, size_t n) {
  if (w->size == 1) return;
  float *into = mn_sim_sum_target(n); /* the timing-only simulation's (sim.h) */
  for (size_t off = 0; off < n; off += CHUNK) {
    size_t count = n - off < CHUNK ? n - off : CHUNK;
    if (into)
      MPI_Allreduce(buf + off, into + off, (int)count, MPI_FLOAT, MPI_SUM, w->comm);
    else
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

void mn_mean_floats(const mn_world *w, float *buf, size_t n) {
  if (w->size == 1) return;
  mn_grad_allreduce(w, buf, n);
  const float inv = 1.0f / (float)w->size;
  for (size_t i = 0; i < n; i++) buf[i] *= inv;
}

void mn_average_floats(const mn_world *w, float *buf, size_t n, double weight) {
  if (w->size == 1 || n == 0) return;
  /* all weights equal when N * sum(weight^2) = sum(weight)^2 (whole numbers: exact) */
  double sums[2] = {weight, weight * weight};
  MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, w->comm);
  if ((double)w->size * sums[1] == sums[0] * sums[0] || sums[0] <= 0.0) {
    mn_mean_floats(w, buf, n);
    return;
  }
  const float share = (float)(weight / sums[0]);
  for (size_t i = 0; i < n; i++) buf[i] *= share;
  mn_grad_allreduce(w, buf, n);
}
