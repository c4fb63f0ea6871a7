#define _POSIX_C_SOURCE 200809L
/* loader.c: double-buffered batch prefetching on one POSIX thread. */
#include "loader.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void mn_cpu_relax(void) { _mm_pause(); }
#else
static inline void mn_cpu_relax(void) {}
#endif

static void fill(mn_loader *l, mn_batch *b, long long step) {
  size_t pos;
  b->count = l->rows_for_step(l->user, step, &pos, l->stream ? NULL : b->rows);
  b->step = step;
  const long long epoch = l->steps_per_epoch > 0 ? step / l->steps_per_epoch : 0;
  if (l->stream) {
    if (mn_stream_gather(l->stream, epoch, pos, b->count, b->x, b->y, b->t, b->ids) != 0) {
      l->failed = true;
      return;
    }
  } else {
    mn_split_gather(l->split, b->rows, b->count, b->x, b->y, b->t);
    for (int i = 0; i < b->count; i++) b->ids[i] = l->row_offset + b->rows[i];
  }
  if (l->aug)
    mn_augment_apply(l->aug, l->aug_seed, epoch, b->ids, b->count, b->x, l->aug_pad,
                     l->aug_scratch);
}

/* How long the thread polls for the next request before it sleeps on the condition variable.
 * Waking a sleeping thread costs the requester a futex syscall, measured at ~20 us per step
 * here (a VM, where the wake-up is an inter-processor interrupt): 1% of a small MLP's step.
 * While the thread polls, a request is a plain store under the mutex. Steps longer than this
 * pay the syscall, which is then negligible. */
#define POLL_SECONDS 0.004

static bool reader_busy(mn_loader *l) { return l->stream && mn_stream_pending(l->stream); }

/* The thread fills whichever buffer holds a request it has not served; a buffer re-requested
 * while being filled is simply filled again. */
static void *run(void *arg) {
  mn_loader *l = arg;
  pthread_mutex_lock(&l->mu);
  double idle_since = -1.0;
  for (;;) {
    int slot = -1;
    for (int i = 0; i < 2 && slot < 0; i++)
      if (l->requested[i] >= 0 && !l->ready[i]) slot = i;
    if (l->stop) break;
    if (slot < 0) {
      const double now = mn_now_s();
      if (idle_since < 0.0) idle_since = now;
      /* poll: requests arrive without a wake-up; not without a CPU of its own (l->poll), nor
       * while a stream's reader has a window to read: it needs the CPU the poll would burn */
      if (l->poll && !reader_busy(l) && now - idle_since < POLL_SECONDS) {
        atomic_store(&l->polling, true);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < 64 && atomic_load(&l->polling) && !reader_busy(l); i++) mn_cpu_relax();
        pthread_mutex_lock(&l->mu);
        continue;
      }
      atomic_store(&l->polling, false);
      pthread_cond_wait(&l->cv, &l->mu);
      continue;
    }
    idle_since = -1.0;
    const long long step = l->requested[slot];
    pthread_mutex_unlock(&l->mu);
    fill(l, &l->buf[slot], step);
    pthread_mutex_lock(&l->mu);
    if (l->requested[slot] == step) l->ready[slot] = true;
    pthread_cond_broadcast(&l->cv);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

int mn_loader_init(mn_loader *l, const mn_split *split, int batch, mn_rows_fn rows, void *user,
                   uint64_t row_offset, bool threaded, mn_err *err) {
  memset(l, 0, sizeof *l);
  l->split = split;
  l->batch = batch;
  l->rows_for_step = rows;
  l->user = user;
  l->row_offset = row_offset;
  l->threaded = threaded;
  l->requested[0] = l->requested[1] = -1;
  const size_t width = split->info.has_labels ? 1 : (size_t)split->info.classes;
  for (int i = 0; i < 2; i++) {
    mn_batch *b = &l->buf[i];
    b->x = mn_alloc((size_t)batch * split->row_len, sizeof(float), "batch", err);
    b->y = mn_alloc((size_t)batch, sizeof(int32_t), "batch", err);
    b->t = mn_alloc((size_t)batch * width, sizeof(float), "batch", err);
    b->rows = mn_alloc((size_t)batch, sizeof(uint32_t), "batch", err);
    b->ids = mn_alloc((size_t)batch, sizeof(uint64_t), "batch", err);
    if (!b->x || !b->y || !b->t || !b->rows || !b->ids) return -1;
  }
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv, NULL);
  if (threaded && pthread_create(&l->thread, NULL, run, l) != 0)
    return mn_fail(err, "cannot start the prefetch thread");
  l->started = threaded;
  return 0;
}

static void request(mn_loader *l, long long step, int slot) {
  if (!l->threaded) return;
  pthread_mutex_lock(&l->mu);
  l->requested[slot] = step;
  l->ready[slot] = false;
  /* a polling thread sees the request when it next takes the mutex; a sleeping one needs the
   * wake-up (it set polling = false under this mutex before it slept) */
  if (!atomic_exchange(&l->polling, false)) pthread_cond_broadcast(&l->cv);
  pthread_mutex_unlock(&l->mu);
}

void mn_loader_use_stream(mn_loader *l, mn_stream *stream, long steps_per_epoch) {
  l->stream = stream;
  l->steps_per_epoch = steps_per_epoch;
}

int mn_loader_augment(mn_loader *l, const mn_augment *a, uint64_t seed, long steps_per_epoch,
                      const float *pad, mn_err *err) {
  if (!a->on) return 0;
  l->aug_scratch = mn_alloc((size_t)a->c * a->h * a->w, sizeof(float), "augmentation", err);
  if (!l->aug_scratch) return -1;
  l->aug = a, l->aug_seed = seed, l->steps_per_epoch = steps_per_epoch, l->aug_pad = pad;
  return 0;
}

void mn_loader_start(mn_loader *l, long long first) { request(l, first, (int)(first & 1)); }

const mn_batch *mn_loader_next(mn_loader *l, long long step) {
  const int slot = (int)(step & 1);
  mn_batch *b = &l->buf[slot];
  if (!l->threaded) {
    fill(l, b, step);
    return l->failed ? NULL : b;
  }
  pthread_mutex_lock(&l->mu);
  const bool asked = l->requested[slot] == step;
  pthread_mutex_unlock(&l->mu);
  if (!asked) request(l, step, slot); /* out of sequence: fetch it now */
  pthread_mutex_lock(&l->mu);
  while (!l->ready[slot]) pthread_cond_wait(&l->cv, &l->mu);
  pthread_mutex_unlock(&l->mu);
  if (l->failed) return NULL;
  request(l, step + 1, 1 - slot);
  return b;
}

void mn_loader_destroy(mn_loader *l) {
  if (l->started) {
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
  }
  for (int i = 0; i < 2; i++) {
    free(l->buf[i].x), free(l->buf[i].y), free(l->buf[i].t), free(l->buf[i].rows);
    free(l->buf[i].ids);
  }
  free(l->aug_scratch);
  memset(l, 0, sizeof *l);
}
