/* clock.h: the monotonic clock (CLOCK_MONOTONIC), one clock for every process of a machine:
 * times taken by different ranks of a node compare directly (node_reduce.c). */
#ifndef MN_CLOCK_H
#define MN_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t mn_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double mn_now_s(void) { return 1e-9 * (double)mn_now_ns(); }

#endif
