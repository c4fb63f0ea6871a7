/* step_record.c: per-rank records carried in the gradient allreduce (see step_record.h). */
#include "step_record.h"

#include <stdio.h>
#include <string.h>

#define MOD24 0xFFFFFFu

size_t mn_record_tail(int size) { return (size_t)size * MN_REC_FIELDS; }

void mn_record_write(float *tail, int size, int rank, const uint32_t rec[MN_REC_FIELDS]) {
  memset(tail, 0, mn_record_tail(size) * sizeof(float));
  for (int f = 0; f < MN_REC_FIELDS; f++)
    tail[(size_t)rank * MN_REC_FIELDS + f] = (float)(rec[f] & MOD24);
}

static void describe(char *buf, size_t len, int rank, const float *r) {
  snprintf(buf, len, "rank %d: step %.0f, %.0f steps left, layout %06x", rank, r[MN_REC_STEP] + 1,
           r[MN_REC_LEFT], (unsigned)r[MN_REC_LAYOUT]);
}

void mn_record_read(const float *tail, int size, mn_record_verdict *v) {
  memset(v, 0, sizeof *v);
  v->loss_rank = v->grad_rank = v->loss_layer = v->grad_layer = -1;
  const float *zero = tail;
  size_t used = 0;
  for (int r = 0; r < size; r++) {
    const float *rec = tail + (size_t)r * MN_REC_FIELDS;
    if (rec[MN_REC_LOSS] != 0.0f && v->loss_ranks++ == 0)
      v->loss_rank = r, v->loss_layer = (int)rec[MN_REC_LOSS] - 1;
    if (rec[MN_REC_GRAD] != 0.0f && v->grad_ranks++ == 0)
      v->grad_rank = r, v->grad_layer = (int)rec[MN_REC_GRAD] - 1;
    v->stop |= rec[MN_REC_STOP] != 0.0f;
    if (r > 0 && (rec[MN_REC_STEP] != zero[MN_REC_STEP] || rec[MN_REC_LEFT] != zero[MN_REC_LEFT] ||
                  rec[MN_REC_LAYOUT] != zero[MN_REC_LAYOUT])) {
      if (v->desync_ranks++ < 4 && used < sizeof v->desync) {
        char one[160];
        describe(one, sizeof one, r, rec);
        used += (size_t)snprintf(v->desync + used, sizeof v->desync - used, "%s; ", one);
      }
    }
  }
  if (v->desync_ranks > 0 && used < sizeof v->desync) {
    char one[160];
    describe(one, sizeof one, 0, zero);
    snprintf(v->desync + used, sizeof v->desync - used, "%s%s",
             v->desync_ranks > 4 ? "...; " : "", one);
  }
}
