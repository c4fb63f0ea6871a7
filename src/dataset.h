/* dataset.h: rows of a source (source.h) held in memory, and batches gathered from them.
 *
 * Rows are held as read: uint8 pixels stay uint8 (4x less than float), in the stored layout,
 * and are converted, transposed and normalised while a batch is assembled. A split may hold
 * part of the source (rows [begin, begin + n)): that is how `shard` mode keeps 1/N per rank. */
#ifndef MN_DATASET_H
#define MN_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "layer.h"
#include "source.h"

typedef struct {
  const mn_source *src; /* the files, layout and normalisation (borrowed) */
  mn_split_info info;   /* src->info */
  size_t row_len;       /* values per sample */
  size_t begin, n;      /* source rows [begin, begin + n) are held */
  void *x;              /* n * row_len, uint8_t or float, in the stored layout */
  int32_t *labels;      /* n, when info.has_labels */
  float *targets;       /* n * classes, otherwise */
  bool borrowed;        /* x, labels and targets belong to someone else (mn_split_borrow) */
} mn_split;

/* Loads source rows [begin, end) (end = SIZE_MAX: to the end), checked as mn_source_read
 * checks them. */
int mn_split_load(mn_split *s, const mn_source *src, size_t begin, size_t end, mn_err *err);
/* Room for n rows, none read (evaluation's and the stream's windows). */
int mn_split_alloc(mn_split *s, const mn_source *src, size_t n, mn_err *err);
/* Rows [begin, begin + n) held in memory the caller owns (a node's shared window). */
void mn_split_borrow(mn_split *s, const mn_source *src, size_t begin, size_t n, void *x,
                     int32_t *labels, float *targets);
void mn_split_free(mn_split *s);
/* Assembles a batch of the given local row indices into x (count, row_len) as float, in the
 * model's layout and normalised, and labels/targets (both NULL: x only). */
void mn_split_gather(const mn_split *s, const uint32_t *rows, int count, float *x, int32_t *labels,
                     float *targets);
/* Memory for rows (like mn_alloc, not zeroed when large). Batches gather random rows, each
 * on a page of its own: with 4 KiB pages nearly every row missed the TLB (a 128-row
 * Fashion-MNIST batch took 61 us; 42 us now). A block of 8 MiB or more is aligned to 2 MiB
 * and asks for transparent huge pages (kernels set to `madvise`, as here, give them only on
 * request). */
void *mn_rows_alloc(size_t n, size_t size, const char *what, mn_err *err);

#endif
