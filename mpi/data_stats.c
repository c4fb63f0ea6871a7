#define _POSIX_C_SOURCE 200809L /* open_memstream */
/* data_stats.c: block-wise, world-size-independent statistics of the training rows (see
 * data_stats.h). */
#include "data_stats.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCK = 4096 };

/* One block's count, mean and M2 for each statistic: rows [first, first + n) read into x/t. */
static void block_moments(const mn_source *src, const void *x, const float *t, size_t n,
                          int ninputs, int ntargets, double *part) {
  const size_t len = src->row_len;
  const int k = src->info.classes;
  for (int pass = 0; pass < 2; pass++) /* sums, then squared deviations from the mean */
    for (size_t r = 0; r < n; r++) {
      for (size_t j = 0; ninputs && j < len; j++) {
        const size_t at = r * len + (src->map ? src->map[j] : j);
        const double v = (src->info.x_is_u8 ? (double)((const uint8_t *)x)[at]
                                            : (double)((const float *)x)[at]) *
                         src->scale;
        double *p = part + 3 * mn_source_stat_of(src, src->normalise, j);
        if (pass == 0)
          p[0] += 1.0, p[1] += v;
        else
          p[2] += (v - p[1]) * (v - p[1]);
      }
      for (int c = 0; c < ntargets; c++) {
        const double v = t[r * (size_t)k + (size_t)c];
        double *p = part + 3 * (ninputs + c);
        if (pass == 0)
          p[0] += 1.0, p[1] += v;
        else
          p[2] += (v - p[1]) * (v - p[1]);
      }
      if (pass == 0 && r + 1 == n) /* sums -> means */
        for (int s = 0; s < ninputs + ntargets; s++) part[3 * s + 1] /= part[3 * s];
    }
}

int mn_data_stats_apply(const mn_world *w, mn_source *src, bool targets, mn_data_stats *out,
                        mn_err *err) {
  memset(out, 0, sizeof *out);
  const mn_normalise how = src->normalise;
  const int ninputs = how == MN_NORMALISE_FEATURE || how == MN_NORMALISE_CHANNEL
                          ? mn_source_stat_count(src, how)
                          : 0;
  const int ntargets = targets && !src->info.has_labels ? src->info.classes : 0;
  if (targets && src->info.has_labels)
    return mn_fail(err, "%s: standardise_targets needs float targets, but %s holds labels",
                   src->label, src->y);
  const int nstats = ninputs + ntargets;
  if (nstats == 0) return 0;
  const size_t rows = src->info.rows, nblocks = (rows + BLOCK - 1) / BLOCK;
  double *part = calloc(nblocks * (size_t)nstats * 3, sizeof *part);
  void *x = malloc((size_t)BLOCK * src->row_len * src->x_elem);
  float *t = ntargets ? malloc((size_t)BLOCK * (size_t)ntargets * sizeof *t) : NULL;
  int32_t *labels = src->info.has_labels ? malloc(BLOCK * sizeof *labels) : NULL;
  int rc = part && x && (t || !ntargets) && (labels || !src->info.has_labels)
               ? 0
               : mn_fail(err, "%s: out of memory for the statistics", src->label);
  mn_source_reader *r = rc == 0 ? mn_source_reader_open(src, "statistics", err) : NULL;
  if (rc == 0 && !r) rc = -1;
  for (size_t b = (size_t)w->rank; rc == 0 && b < nblocks; b += (size_t)w->size) {
    const size_t first = b * BLOCK, n = rows - first < BLOCK ? rows - first : BLOCK;
    rc = mn_source_read(r, first, n, x, labels, src->info.has_labels ? NULL : t, err);
    if (rc == 0) block_moments(src, x, t, n, ninputs, ntargets, part + b * (size_t)nstats * 3);
  }
  mn_source_reader_close(r);
  if (mn_world_agree(w, rc, err) != 0) {
    free(part), free(x), free(t), free(labels);
    return -1;
  }
  /* every entry has one contributor: the sum is exact */
  MPI_Allreduce(MPI_IN_PLACE, part, (int)(nblocks * (size_t)nstats * 3), MPI_DOUBLE, MPI_SUM,
                w->comm);
  double *mean = malloc((size_t)nstats * sizeof *mean), *std = malloc((size_t)nstats * sizeof *std);
  if (!mean || !std) mn_world_abort(w, "out of memory");
  for (int s = 0; s < nstats; s++) {
    double n = 0.0, m = 0.0, m2 = 0.0;
    for (size_t b = 0; b < nblocks; b++) {
      const double *p = part + (b * (size_t)nstats + (size_t)s) * 3;
      const double nb = p[0], d = p[1] - m, all = n + nb;
      m2 += p[2] + d * d * n * nb / all;
      m += d * nb / all;
      n = all;
    }
    mean[s] = m;
    std[s] = sqrt(m2 / n);
    if (!(std[s] > 1e-12 * fmax(1.0, fabs(m)))) std[s] = 1.0; /* a constant: left as it is */
  }
  free(part), free(x), free(t), free(labels);
  out->ninputs = ninputs, out->ntargets = ntargets;
  out->mean = mean, out->std = std;
  out->target_mean = mean + ninputs, out->target_std = std + ninputs;
  if (ninputs) rc = mn_source_set_stats(src, mean, std, ninputs, err);
  if (rc == 0 && ntargets) rc = mn_source_set_target_stats(src, mean + ninputs, std + ninputs, err);
  return rc;
}

static void json_list(FILE *f, const char *name, const double *v, int n) {
  fprintf(f, ",\n  \"%s\": [", name);
  for (int i = 0; i < n; i++) fprintf(f, "%s%.17g", i ? ", " : "", v[i]);
  fprintf(f, "]");
}

char *mn_data_stats_json(const mn_data_stats *st, const mn_source *src) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  fprintf(f, "{\n  \"normalise\": \"%s\", \"layout\": \"%s\", \"rows\": %zu",
          mn_normalise_names[src->normalise], mn_layout_names[src->layout], src->info.rows);
  if (st->ninputs) {
    json_list(f, "mean", st->mean, st->ninputs);
    json_list(f, "std", st->std, st->ninputs);
  }
  if (st->ntargets) {
    json_list(f, "target_mean", st->target_mean, st->ntargets);
    json_list(f, "target_std", st->target_std, st->ntargets);
  }
  fprintf(f, "\n}\n");
  fclose(f);
  return text;
}

void mn_data_stats_free(mn_data_stats *st) {
  free(st->mean), free(st->std);
  memset(st, 0, sizeof *st);
}
