/* watchdog.c: the phase counter, the watchdog thread and the stop-signal flag. */
#define _GNU_SOURCE
#include "watchdog.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

static const char *const phase_names[] = {"start-up",   "data loading",       "forward",
                                          "backward",   "gradient allreduce", "optimizer",
                                          "evaluation", "checkpoint write"};

static atomic_uint_fast64_t progress;
static atomic_int current_phase;
static atomic_llong current_step;
static atomic_bool running;
static volatile sig_atomic_t stop_signal;
static pthread_t thread;
static int watch_rank;
static double watch_timeout;

void mn_watchdog_phase(mn_phase phase, long long step) {
  atomic_store_explicit(&current_phase, (int)phase, memory_order_relaxed);
  atomic_store_explicit(&current_step, step, memory_order_relaxed);
  atomic_fetch_add_explicit(&progress, 1, memory_order_release);
}

void mn_watchdog_tick(void) { atomic_fetch_add_explicit(&progress, 1, memory_order_release); }

static void *watch(void *arg) {
  (void)arg;
  uint_fast64_t seen = atomic_load(&progress);
  double since = mn_now_s();
  const double tick = watch_timeout / 8 < 1.0 ? watch_timeout / 8 : 1.0;
  const struct timespec nap = {(time_t)tick, (long)((tick - (double)(time_t)tick) * 1e9)};
  while (atomic_load(&running)) {
    nanosleep(&nap, NULL);
    const uint_fast64_t p = atomic_load_explicit(&progress, memory_order_acquire);
    if (p != seen) {
      seen = p;
      since = mn_now_s();
    } else if (mn_now_s() - since > watch_timeout) {
      const int phase = atomic_load(&current_phase);
      fprintf(stderr,
              "mpinet: error: rank %d: no progress for %.0f s in %s at step %lld (a peer died, "
              "hangs or was stopped?); ending the job (train.watchdog_seconds)\n",
              watch_rank, watch_timeout, phase_names[phase], atomic_load(&current_step) + 1);
      fflush(stderr);
      _exit(MN_EXIT_WATCHDOG); /* no MPI call from this thread: the launcher ends the rest */
    }
  }
  return NULL;
}

void mn_watchdog_start(int rank, double timeout_s) {
  if (timeout_s <= 0.0 || atomic_load(&running)) return;
  watch_rank = rank;
  watch_timeout = timeout_s;
  atomic_store(&running, true);
  if (pthread_create(&thread, NULL, watch, NULL) != 0) atomic_store(&running, false);
}

void mn_watchdog_stop(void) {
  if (!atomic_exchange(&running, false)) return;
  pthread_join(thread, NULL);
}

static void on_stop_signal(int sig) { stop_signal = sig; }

void mn_signals_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGUSR1, &sa, NULL);
}

int mn_stop_signal(void) { return stop_signal; }
