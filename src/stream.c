#define _GNU_SOURCE /* SCHED_IDLE */
/* stream.c: windows of a shard read from HDF5 by a thread (see stream.h). */
#include "stream.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "h5util.h"
#include "rng.h"

/* counter-based streams of their own, apart from the sampler's */
#define STREAM_BLOCKS(rank)                                                                        \
  (MN_STREAM_SHUFFLE + ((uint64_t)((rank) + 1) << 16) + ((uint64_t)1 << 40))
#define STREAM_ROWS(rank) (MN_STREAM_SHUFFLE + ((uint64_t)((rank) + 1) << 16) + ((uint64_t)2 << 40))

static size_t block_size(const mn_stream *s, size_t b) {
  return s->block_first[b + 1] - s->block_first[b];
}

/* order[] := epoch's block order; start[] (if not NULL) := first position of each window */
static void plan_epoch(const mn_stream *s, long long epoch, uint32_t *order, size_t *start) {
  mn_rng_permutation(order, (uint32_t)s->nblocks, s->seed, STREAM_BLOCKS(s->rank), (uint64_t)epoch);
  if (!start) return;
  size_t at = 0;
  for (size_t k = 0; k < s->nwindows; k++) {
    start[k] = at;
    for (size_t j = k * s->window_blocks; j < (k + 1) * s->window_blocks && j < s->nblocks; j++)
      at += block_size(s, order[j]);
  }
  start[s->nwindows] = at;
}

/* Reads window `id` into w (the reader thread, without the stream's mutex): 0, -1 if reading
 * failed (s->error says why), 1 if the reader was told to retire first. */
static int load(mn_stream *s, mn_stream_window *w, long long id) {
  const long long epoch = id / (long long)s->nwindows;
  const size_t k = (size_t)(id % (long long)s->nwindows);
  if (s->reader_epoch != epoch) {
    plan_epoch(s, epoch, s->reader_order, NULL);
    s->reader_epoch = epoch;
  }
  const size_t elem = s->src->x_elem;
  const size_t width = s->src->info.has_labels ? 1 : (size_t)s->src->info.classes;
  size_t rows = 0;
  mn_err err;
  for (size_t j = k * s->window_blocks; j < (k + 1) * s->window_blocks && j < s->nblocks; j++) {
    if (atomic_load(&s->retire)) return 1;
    const size_t b = s->reader_order[j], count = block_size(s, b), first = s->block_first[b];
    mn_h5_lock();
    int rc =
        mn_source_read(s->file, first, count, (char *)w->data.x + rows * s->src->row_len * elem,
                       w->data.labels ? w->data.labels + rows : NULL,
                       w->data.targets ? w->data.targets + rows * width : NULL, &err);
    mn_h5_unlock();
    if (rc != 0) {
      snprintf(s->error, sizeof s->error, "%s", err.msg);
      return -1;
    }
    for (size_t i = 0; i < count; i++) w->ids[rows + i] = first + i;
    rows += count;
  }
  w->rows = rows;
  w->data.n = rows;
  mn_rng_permutation(w->perm, (uint32_t)rows, s->seed, STREAM_ROWS(s->rank), (uint64_t)id);
  return 0;
}

/* Under s->mu, in the reader: the test hook mn_stream_starve() holds a background reader,
 * using no CPU, until it is told to retire (or stop), or for 5 s at most. */
static void starve(mn_stream *s) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 5;
  while (!s->stop && !atomic_load(&s->retire))
    if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0) break;
  s->starve = false;
}

static void *reader(void *arg) {
  mn_stream *s = arg;
  pthread_mutex_lock(&s->mu);
  while (!s->stop && !atomic_load(&s->retire)) {
    if (s->starve && s->background) {
      starve(s);
      continue;
    }
    const long long target = s->need >= 0 ? s->need : s->next;
    bool held = false;
    for (int i = 0; i < 2; i++) held |= s->win[i].id == target;
    if (target < 0 || held || s->failed) {
      if (held && target == s->next) s->next = -1;
      if (held && target == s->need) s->need = -1;
      if (target < 0 || s->failed || !held) {
        atomic_store(&s->pending, false);
        pthread_cond_wait(&s->cv, &s->mu);
      }
      continue;
    }
    mn_stream_window *w = &s->win[s->win[0].id == s->current ? 1 : 0]; /* never the current */
    w->id = target;
    w->ready = false;
    pthread_mutex_unlock(&s->mu);
    int rc = load(s, w, target);
    pthread_mutex_lock(&s->mu);
    if (rc != 0) { /* failed, or abandoned by a retiring reader */
      if (rc < 0) s->failed = true;
      w->id = -1;
    } else {
      w->ready = true;
    }
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int mn_stream_open(mn_stream *s, const mn_source *src, size_t begin, size_t n, size_t budget,
                   uint64_t seed, int rank, mn_err *err) {
  memset(s, 0, sizeof *s);
  atomic_init(&s->pending, false);
  atomic_init(&s->retire, false);
  s->win[0].id = s->win[1].id = s->current = s->need = s->next = -1;
  s->epoch = s->reader_epoch = -1;
  s->src = src;
  s->begin = begin;
  s->n = n;
  s->seed = seed;
  s->rank = rank;
  const size_t elem = src->x_elem;
  const size_t width = src->info.has_labels ? sizeof(int32_t) : src->info.classes * sizeof(float);
  s->row_bytes = src->row_len * elem + width + sizeof(uint64_t) + sizeof(uint32_t);
  s->nblocks = mn_source_blocks(src, begin, n, NULL, &s->block_rows);
  s->block_first = mn_alloc(s->nblocks + 1, sizeof(size_t), "stream", err);
  if (!s->block_first) return -1;
  mn_source_blocks(src, begin, n, s->block_first, &s->block_rows);
  s->block_first[s->nblocks] = begin + n;
  s->file = mn_source_reader_open(src, "streaming", err);
  if (!s->file) return -1;
  const size_t block_bytes = s->block_rows * s->row_bytes;
  if (2 * block_bytes > budget)
    return mn_fail(err,
                   "%s: [data] memory_mb = %.1f is too small to stream %s: two HDF5 chunks "
                   "of %zu rows take %.1f MB",
                   src->label, (double)budget / 1e6, src->x, s->block_rows,
                   2.0 * block_bytes / 1e6);
  s->window_blocks = budget / 2 / block_bytes;
  if (s->window_blocks > s->nblocks) s->window_blocks = s->nblocks;
  s->nwindows = (s->nblocks + s->window_blocks - 1) / s->window_blocks;
  s->window_rows = s->window_blocks * s->block_rows;
  s->order = mn_alloc(s->nblocks, sizeof(uint32_t), "stream", err);
  s->reader_order = mn_alloc(s->nblocks, sizeof(uint32_t), "stream", err);
  s->start = mn_alloc(s->nwindows + 1, sizeof(size_t), "stream", err);
  if (!s->order || !s->reader_order || !s->start) return -1;
  for (int i = 0; i < 2; i++) {
    mn_stream_window *w = &s->win[i];
    if (mn_split_alloc(&w->data, src, s->window_rows, err) != 0) return -1;
    w->ids = mn_alloc(s->window_rows, sizeof(uint64_t), "stream window", err);
    w->perm = mn_alloc(s->window_rows, sizeof(uint32_t), "stream window", err);
    if (!w->ids || !w->perm) return -1;
    /* the pages now, not at the window's first read: faulting in (and zeroing) 16 MB of
     * fresh pages doubled the first two windows' reads, inside training */
    memset(w->data.x, 0, s->window_rows * src->row_len * elem);
  }
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->thread, NULL, reader, s) != 0) {
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    return mn_fail(err, "cannot start the stream reader thread");
  }
  s->running = true;
  return 0;
}

bool mn_stream_set_background(mn_stream *s) {
#ifdef SCHED_IDLE
  struct sched_param none = {0};
  pthread_mutex_lock(&s->mu);
  s->background = s->running && pthread_setschedparam(s->thread, SCHED_IDLE, &none) == 0;
  pthread_mutex_unlock(&s->mu);
  return s->background;
#else
  (void)s;
  return false;
#endif
}

void mn_stream_starve(mn_stream *s) {
  pthread_mutex_lock(&s->mu);
  s->starve = true;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

bool mn_stream_demoted(mn_stream *s) {
  pthread_mutex_lock(&s->mu);
  const bool d = s->demoted;
  pthread_mutex_unlock(&s->mu);
  return d;
}

static double thread_cpu_s(pthread_t t) {
  clockid_t c;
  struct timespec ts;
  if (pthread_getcpuclockid(t, &c) != 0 || clock_gettime(c, &ts) != 0) return 0.0;
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Under s->mu: stops the starved background reader after its current block and starts one
 * at the caller's (normal) priority in its place. */
static void replace_reader(mn_stream *s) {
  atomic_store(&s->retire, true);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL); /* it sees `retire` after its current block, or on waking */
  pthread_mutex_lock(&s->mu);
  atomic_store(&s->retire, false);
  s->background = false;
  s->demoted = true;
  if (pthread_create(&s->thread, NULL, reader, s) != 0) {
    s->running = false;
    s->failed = true;
    snprintf(s->error, sizeof s->error, "%s: cannot start the stream reader thread again",
             s->src->label);
  }
}

/* Under s->mu, with window `id` asked for: waits a while for the reader. `since` and `cpu`
 * (the reader's CPU time then) start the consumer's wait; a background reader that got under
 * half of it, after STARVED_S, is replaced. */
#define STARVED_S 0.05
static void wait_for_reader(mn_stream *s, double *since, double *cpu) {
  if (!s->background) {
    pthread_cond_wait(&s->cv, &s->mu);
    return;
  }
  if (*since < 0.0) {
    *since = mn_now_s();
    *cpu = thread_cpu_s(s->thread);
  }
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += 10 * 1000 * 1000;
  if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
  pthread_cond_timedwait(&s->cv, &s->mu, &until);
  const double waited = mn_now_s() - *since;
  if (waited >= STARVED_S && thread_cpu_s(s->thread) - *cpu < waited / 2) replace_reader(s);
}

/* The slot holding window id once read, or -1 (under s->mu). */
static int slot_of(const mn_stream *s, long long id) {
  for (int i = 0; i < 2; i++)
    if (s->win[i].id == id && s->win[i].ready) return i;
  return -1;
}

/* The slot holding window id, read now or by the reader; -1 if reading failed. */
static int ensure(mn_stream *s, long long id) {
  pthread_mutex_lock(&s->mu);
  s->current = id;
  int slot;
  double since = -1.0, cpu = 0.0;
  while ((slot = slot_of(s, id)) < 0 && !s->failed) {
    s->need = id;
    atomic_store(&s->pending, true);
    pthread_cond_broadcast(&s->cv);
    wait_for_reader(s, &since, &cpu);
  }
  /* read ahead; the reader is woken only when that is news (not at every batch) */
  if (s->next != id + 1 && slot_of(s, id + 1) < 0) {
    s->next = id + 1;
    atomic_store(&s->pending, true);
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return slot;
}

int mn_stream_gather(mn_stream *s, long long epoch, size_t pos, int count, float *x,
                     int32_t *labels, float *targets, uint64_t *ids) {
  if (s->epoch != epoch) {
    plan_epoch(s, epoch, s->order, s->start);
    s->epoch = epoch;
  }
  const size_t width = s->src->info.has_labels ? 1 : (size_t)s->src->info.classes;
  int done = 0;
  while (done < count) {
    const size_t p = pos + (size_t)done;
    size_t k = 0;
    while (k + 1 < s->nwindows && s->start[k + 1] <= p) k++;
    const int slot = ensure(s, epoch * (long long)s->nwindows + (long long)k);
    if (slot < 0) return -1;
    const mn_stream_window *w = &s->win[slot];
    /* the run of positions inside this window */
    int run = count - done;
    if (p + (size_t)run > s->start[k + 1]) run = (int)(s->start[k + 1] - p);
    uint32_t rows[256];
    for (int at = 0; at < run; at += 256) {
      const int m = run - at < 256 ? run - at : 256;
      for (int i = 0; i < m; i++) rows[i] = w->perm[p - s->start[k] + (size_t)(at + i)];
      const int o = done + at;
      mn_split_gather(&w->data, rows, m, x + (size_t)o * s->src->row_len,
                      labels ? labels + o : NULL, targets ? targets + (size_t)o * width : NULL);
      for (int i = 0; i < m; i++) ids[o + i] = w->ids[rows[i]];
    }
    done += run;
  }
  return 0;
}

void mn_stream_close(mn_stream *s) {
  if (s->running) {
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
  }
  for (int i = 0; i < 2; i++) {
    mn_split_free(&s->win[i].data);
    free(s->win[i].ids), free(s->win[i].perm);
  }
  if (s->file) {
    mn_h5_lock(); /* in case another thread is in HDF5 */
    mn_source_reader_close(s->file);
    mn_h5_unlock();
  }
  free(s->order), free(s->reader_order), free(s->start), free(s->block_first);
  memset(s, 0, sizeof *s);
}
