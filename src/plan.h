/* plan.h: placing buffers whose lifetimes are known in advance in one arena.
 *
 * The network knows before its first step when each of its buffers (a layer's output, the
 * gradient backward writes for it) is written first and read last, as steps of one pass:
 * two buffers whose intervals of steps meet may not share a byte, others may. Placed once
 * at start-up; nothing is allocated per step. */
#ifndef MN_PLAN_H
#define MN_PLAN_H

#include <stddef.h>

typedef struct {
  size_t bytes;
  int first, last; /* the steps it is live in, both included */
  size_t offset;   /* set by mn_plan_place: from the arena's start */
} mn_plan_value;

/* Places the values (bytes 0: offset 0, never live) so that two whose intervals meet do not
 * overlap; returns the arena's size. Largest first, each at the lowest offset that fits
 * (the greedy-by-size placement of TFLite's arena planner); offsets are multiples of 64. */
size_t mn_plan_place(mn_plan_value *v, int n);

#endif
