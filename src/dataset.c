#ifndef _DEFAULT_SOURCE /* (smpicc defines it) */
#define _DEFAULT_SOURCE /* madvise */
#endif
/* dataset.c: rows of a source held in memory, and batch assembly (see dataset.h). */
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "clones.h"

void *mn_rows_alloc(size_t n, size_t size, const char *what, mn_err *err) {
  enum { HUGE = 2 << 20 };
  size_t bytes;
  if (mn_mul_size(n, size, &bytes) != 0 || bytes < 4 * (size_t)HUGE)
    return mn_alloc(n, size, what, err);
  const size_t whole = (bytes + HUGE - 1) / HUGE * HUGE;
  void *p = NULL;
  if (posix_memalign(&p, HUGE, whole) != 0) {
    mn_fail(err, "%s: out of memory (%zu bytes)", what, bytes);
    return NULL;
  }
#ifdef MADV_HUGEPAGE
  madvise(p, whole, MADV_HUGEPAGE);
#endif
  return p;
}

int mn_split_alloc(mn_split *s, const mn_source *src, size_t n, mn_err *err) {
  memset(s, 0, sizeof *s);
  s->src = src;
  s->info = src->info;
  s->row_len = src->row_len;
  size_t values;
  if (mn_mul_size(n ? n : 1, s->row_len, &values) != 0)
    return mn_fail(err, "%s: %zu rows are too many to hold", src->label, n);
  s->x = mn_rows_alloc(values, src->x_elem, "dataset", err);
  if (s->info.has_labels)
    s->labels = mn_alloc(n ? n : 1, sizeof(int32_t), "labels", err);
  else
    s->targets = mn_alloc((n ? n : 1) * (size_t)s->info.classes, sizeof(float), "targets", err);
  if (!s->x || !(s->labels || s->targets)) {
    mn_split_free(s);
    return -1;
  }
  return 0;
}

int mn_split_load(mn_split *s, const mn_source *src, size_t begin, size_t end, mn_err *err) {
  if (end > src->info.rows) end = src->info.rows;
  if (begin >= end) {
    memset(s, 0, sizeof *s);
    return mn_fail(err, "%s: %zu rows; cannot take rows [%zu, %zu)", src->label, src->info.rows,
                   begin, end);
  }
  if (mn_split_alloc(s, src, end - begin, err) != 0) return -1;
  s->begin = begin;
  s->n = end - begin;
  mn_source_reader *r = mn_source_reader_open(src, "loading", err);
  int rc = r ? mn_source_read(r, begin, s->n, s->x, s->labels, s->targets, err) : -1;
  mn_source_reader_close(r);
  if (rc != 0) mn_split_free(s);
  return rc;
}

void mn_split_borrow(mn_split *s, const mn_source *src, size_t begin, size_t n, void *x,
                     int32_t *labels, float *targets) {
  memset(s, 0, sizeof *s);
  s->src = src;
  s->info = src->info;
  s->row_len = src->row_len;
  s->begin = begin;
  s->n = n;
  s->x = x;
  s->labels = labels;
  s->targets = targets;
  s->borrowed = true;
}

void mn_split_free(mn_split *s) {
  if (!s->borrowed) {
    free(s->x);
    free(s->labels);
    free(s->targets);
  }
  s->x = NULL;
  s->labels = NULL;
  s->targets = NULL;
}

MN_CLONES
void mn_split_gather(const mn_split *s, const uint32_t *rows, int count, float *x, int32_t *labels,
                     float *targets) {
  const mn_source *src = s->src;
  const size_t len = s->row_len, row_bytes = len * src->x_elem;
  const float *a = src->a, *b = src->b;
  const uint32_t *map = src->map;
  /* Rows are random: each starts with cache misses the hardware prefetcher cannot foresee,
   * so ask for the rows a few places ahead while converting this one (the batch assembly
   * was ~90% memory stalls before). */
  enum { AHEAD = 4 };
  for (int i = 0; i < AHEAD && i < count; i++)
    for (size_t off = 0; off < row_bytes; off += 64)
      __builtin_prefetch((const char *)s->x + rows[i] * row_bytes + off);
  for (int i = 0; i < count; i++) {
    const size_t r = rows[i];
    if (i + AHEAD < count)
      for (size_t off = 0; off < row_bytes; off += 64)
        __builtin_prefetch((const char *)s->x + rows[i + AHEAD] * row_bytes + off);
    float *dst = x + (size_t)i * len;
    if (s->info.x_is_u8) {
      const uint8_t *src8 = (const uint8_t *)s->x + r * len;
      if (map)
        for (size_t j = 0; j < len; j++) dst[j] = (float)src8[map[j]] * a[j] + b[j];
      else
        for (size_t j = 0; j < len; j++) dst[j] = (float)src8[j] * a[j] + b[j];
    } else {
      const float *srcf = (const float *)s->x + r * len;
      if (map)
        for (size_t j = 0; j < len; j++) dst[j] = srcf[map[j]] * a[j] + b[j];
      else
        for (size_t j = 0; j < len; j++) dst[j] = srcf[j] * a[j] + b[j];
    }
    const size_t k = (size_t)s->info.classes;
    if (!labels && !targets) /* x only (predict) */
      continue;
    if (s->info.has_labels)
      labels[i] = s->labels[r];
    else if (src->ta)
      for (size_t c = 0; c < k; c++)
        targets[(size_t)i * k + c] = s->targets[r * k + c] * src->ta[c] + src->tb[c];
    else
      memcpy(targets + (size_t)i * k, s->targets + r * k, k * sizeof(float));
  }
}
