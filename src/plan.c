/* plan.c: greedy-by-size placement of buffers with known lifetimes. */
#include "plan.h"

#include <stdlib.h>

enum { ALIGN = 64 };

static size_t round_up(size_t b) { return (b + ALIGN - 1) / ALIGN * ALIGN; }

static int meet(const mn_plan_value *a, const mn_plan_value *b) {
  return a->first <= b->last && b->first <= a->last;
}

size_t mn_plan_place(mn_plan_value *v, int n) {
  /* order: largest first (a stable index order among equals, so the plan is the same
   * everywhere); a few hundred values at most, so quadratic passes are fine */
  int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
  int *placed = malloc((size_t)(n > 0 ? n : 1) * sizeof *placed);
  if (!order || !placed) {
    free(order), free(placed);
    return 0; /* the caller's allocation of 0 bytes cannot hold them: it reports */
  }
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++) /* insertion sort, stable */
    for (int j = i; j > 0 && v[order[j]].bytes > v[order[j - 1]].bytes; j--) {
      const int t = order[j];
      order[j] = order[j - 1], order[j - 1] = t;
    }
  size_t size = 0;
  int nplaced = 0;
  for (int oi = 0; oi < n; oi++) {
    mn_plan_value *x = &v[order[oi]];
    x->offset = 0;
    if (x->bytes == 0) continue;
    const size_t need = round_up(x->bytes);
    /* the lowest offset clear of every placed value it meets: try 0 and the end of each */
    size_t best = (size_t)-1;
    for (int c = -1; c < nplaced; c++) {
      const size_t at = c < 0 ? 0 : round_up(v[placed[c]].offset + v[placed[c]].bytes);
      if (at >= best) continue;
      int clear = 1;
      for (int k = 0; k < nplaced && clear; k++) {
        const mn_plan_value *y = &v[placed[k]];
        clear = !meet(x, y) || at + need <= y->offset || round_up(y->offset + y->bytes) <= at;
      }
      if (clear) best = at;
    }
    x->offset = best;
    placed[nplaced++] = (int)(x - v);
    if (best + need > size) size = best + need;
  }
  free(order), free(placed);
  return size;
}
