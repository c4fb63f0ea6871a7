/* dataset.h: one split (/train or /test) of an mpinet HDF5 dataset, held in memory.
 *
 * Layout (see README): /<split>/x uint8 or float32, (n, features) | (n, C, H, W) | (n, T, F);
 * /<split>/y int32 labels (n) or float32 targets (n, k). Root attributes: classes, scale
 * (x * scale -> float), optional mean/std. Pixels stay uint8 in memory (4x less than float)
 * and are converted while a batch is assembled. A split can be loaded partially (rows
 * [begin, end)) with one hyperslab read: that is how `shard` mode keeps 1/N per rank. */
#ifndef MN_DATASET_H
#define MN_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "layer.h"

typedef struct {
  size_t rows;    /* rows in the file's split */
  mn_shape shape; /* one sample */
  bool x_is_u8;
  bool has_labels; /* int y (classification) vs float targets */
  int classes;     /* with labels: number of classes; else target width */
} mn_split_info;

typedef struct {
  char path[512];
  char split[16];
  mn_split_info info;
  size_t begin, n; /* rows [begin, begin + n) of the split are held */
  size_t row_len;  /* values per sample */
  void *x;         /* uint8_t or float, n * row_len */
  int32_t *labels; /* n, when info.has_labels */
  float *targets;  /* n * classes, otherwise */
  float a, b;      /* value = raw * a + b (scale and normalisation folded together) */
  uint64_t stamp[4]; /* the file's device, inode, size and mtime (ns) at the load: later
                        reads (streaming, evaluation) refuse a file that has changed since */
} mn_split;

/* Reads the split's shapes and attributes, validating them, without loading rows. */
int mn_split_probe(const char *path, const char *split, mn_split_info *info, mn_err *err);
/* Loads rows [begin, end) (end = SIZE_MAX: to the end), validating labels. */
int mn_split_load(mn_split *s, const char *path, const char *split, size_t begin, size_t end,
                  mn_err *err);
void mn_split_free(mn_split *s);
/* Assembles a batch of the given local row indices into x (count, row_len) as float and
 * labels/targets. */
void mn_split_gather(const mn_split *s, const uint32_t *rows, int count, float *x, int32_t *labels,
                     float *targets);
/* 0 if meta's file is still the one loaded (device, inode, size, mtime), else fails with
 * "PATH: changed since the job started (WHY reads it again)". */
int mn_split_unchanged(const mn_split *meta, const char *why, mn_err *err);
/* Memory for rows (like mn_alloc, not zeroed when large). Batches gather random rows, each
 * on a page of its own: with 4 KiB pages nearly every row missed the TLB (a 128-row
 * Fashion-MNIST batch took 61 us; 42 us now). A block of 8 MiB or more is aligned to 2 MiB
 * and asks for transparent huge pages (kernels set to `madvise`, as here, give them only on
 * request). */
void *mn_rows_alloc(size_t n, size_t size, const char *what, mn_err *err);

/* A split read through one open file (evaluation in row order, the stream's reader in
 * blocks): its datasets stay open, and HDF5's chunk cache holds a chunk of x, so each
 * compressed chunk is inflated once per pass however few rows a read takes. Opening it
 * refuses a file that has changed (mn_split_unchanged; `why` names the reader in that
 * message). Reads are checked as mn_split_load checks: labels in range, values finite. The
 * reader keeps a pointer to meta (a split loaded with no rows). Takes no lock itself. */
typedef struct mn_split_reader mn_split_reader;
mn_split_reader *mn_split_reader_open(const mn_split *meta, const char *why, mn_err *err);
int mn_split_reader_read(mn_split_reader *r, size_t begin, size_t n, void *x, int32_t *labels,
                         float *targets, mn_err *err);
/* Rows per HDF5 chunk of the split's x (0: not chunked). */
long long mn_split_reader_chunk_rows(const mn_split_reader *r);
void mn_split_reader_close(mn_split_reader *r);

#endif
