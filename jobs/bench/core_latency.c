/* core_latency.c: whether the machine's first two CPUs are, right now, what a 2-rank
 * benchmark run assumes: near each other, and each a whole core.
 *
 * Two threads, pinned to the first two CPUs this process may use:
 *  - pass a cache line back and forth: the round trip (median of 5 bursts of 20,000 round
 *    trips or 50 ms each);
 *  - run the same arithmetic alone, each in turn, then both at once: how much slower the pair
 *    runs ("pair_slowdown", the worse CPU's; 1.0 when they are two cores of their own).
 * One JSON line:
 *   {"cross_core_ns": T, "pair_slowdown": S, "cpus": [A, B]}
 * ~100 ms in all. On the 2-vCPU development VM the round trip is ~60 ns and the slowdown ~1.0
 * most of the time, but for stretches of seconds the host runs the two vCPUs on distant cores
 * (~350 ns: every cache line one rank hands the other, the gradient sum and the spin-wait
 * counters, costs 5x as long, and a 2-rank MLP run falls from ~150,000 to ~60,000 samples/s
 * while its compute phases keep their speed), or on one core's two hardware threads, or
 * time-slices them (~2.0: every phase of a run slows). jobs/bench/run.sh probes around every
 * multi-rank run and keeps such runs out of its medians.
 * With fewer than two CPUs: {"cross_core_ns": null, "pair_slowdown": null, "cpus": []}. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

enum { BURSTS = 5, ROUNDS = 20000, BURN = 4000000 };

typedef float v8 __attribute__((vector_size(32)));

static _Alignas(64) atomic_long ball;
static _Alignas(64) atomic_int stage;
static int cpu_b;
static double partner_alone, partner_paired;
static volatile float sink;

static int pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* Seconds for a fixed amount of independent multiply-adds (no memory traffic). */
static double burn(void) {
  v8 a[8];
  for (int j = 0; j < 8; j++) a[j] = (v8){0} + (float)j;
  const v8 m = (v8){0} + 0.999f, c = (v8){0} + 0.001f;
  const double t0 = mn_now_s();
  for (long i = 0; i < BURN; i++)
    for (int j = 0; j < 8; j++) a[j] = a[j] * m + c;
  const double t = mn_now_s() - t0;
  float s = 0.0f;
  for (int j = 0; j < 8; j++) s += a[j][0];
  sink = s;
  return t;
}

/* Sleeps in short naps: a spinning thread would take from the other one on a shared core. */
static void wait_stage(int s) {
  const struct timespec nap = {0, 20000};
  while (atomic_load_explicit(&stage, memory_order_acquire) < s) nanosleep(&nap, NULL);
}

/* Returns every odd value as the next even one until it gets -1, then burns alone and
 * paired when told (unpinned if pinning fails). */
static void *partner(void *arg) {
  (void)arg;
  (void)pin(cpu_b);
  for (long i = 0;; i++) {
    long v;
    while ((v = atomic_load_explicit(&ball, memory_order_acquire)) != 2 * i + 1 && v >= 0) continue;
    if (v < 0) break;
    atomic_store_explicit(&ball, 2 * i + 2, memory_order_release);
  }
  wait_stage(1);
  partner_alone = burn();
  atomic_store_explicit(&stage, 2, memory_order_release);
  wait_stage(3);
  partner_paired = burn();
  return NULL;
}

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  cpu_set_t mine;
  int cpus[2], found = 0;
  if (sched_getaffinity(0, sizeof mine, &mine) != 0) return 1;
  for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
    if (CPU_ISSET(c, &mine)) cpus[found++] = c;
  if (found < 2) {
    puts("{\"cross_core_ns\": null, \"pair_slowdown\": null, \"cpus\": []}");
    return 0;
  }
  cpu_b = cpus[1];
  pthread_t t;
  if (pin(cpus[0]) != 0 || pthread_create(&t, NULL, partner, NULL) != 0) return 1;
  /* a burst ends after ROUNDS round trips or 50 ms, whichever comes first: a partner that
   * shares its CPU with a busy process answers once per time slice, and must not make the
   * probe last minutes */
  double ns[BURSTS];
  for (long b = 0, i = 0; b < BURSTS; b++) {
    const double t0 = mn_now_s();
    long done = 0;
    for (double at = t0; done < ROUNDS && at - t0 < 0.05; done++, i++) {
      atomic_store_explicit(&ball, 2 * i + 1, memory_order_release);
      while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i + 2) continue;
      if (done % 256 == 255) at = mn_now_s();
    }
    ns[b] = (mn_now_s() - t0) * 1e9 / (double)done;
  }
  atomic_store_explicit(&ball, -1, memory_order_release);
  const double alone = burn(); /* the partner waits */
  atomic_store_explicit(&stage, 1, memory_order_release);
  wait_stage(2); /* the partner burned alone */
  atomic_store_explicit(&stage, 3, memory_order_release);
  const double paired = burn();
  pthread_join(t, NULL);
  const double sa = paired / alone, sb = partner_paired / partner_alone;
  qsort(ns, BURSTS, sizeof ns[0], by_value);
  printf("{\"cross_core_ns\": %.0f, \"pair_slowdown\": %.2f, \"cpus\": [%d, %d]}\n", ns[BURSTS / 2],
         sa > sb ? sa : sb, cpus[0], cpus[1]);
  return 0;
}
