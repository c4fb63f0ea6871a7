/* h5_writer.h: writes the mpinet dataset layout, atomically (OUT.tmp, then rename). */
#ifndef MN_H5_WRITER_H
#define MN_H5_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
  const void *x; /* uint8 or float32 values, row-major */
  bool x_is_u8;
  int rank; /* of x, including the row dimension */
  size_t dims[4];
  const int32_t *labels; /* (rows), or NULL */
  const float *targets;  /* (rows, target_width), or NULL */
  int target_width;
} mn_split_data;

typedef struct {
  int classes;             /* for labels; 0 for regression targets */
  double scale;            /* x * scale -> float */
  bool normalise;          /* store train mean/std of x*scale */
  const char *source;      /* where the data came from */
  const char *class_names; /* comma-separated, or NULL */
  bool plain_x;            /* uint8 x without shuffle + deflate: a larger file, read faster */
} mn_dataset_attrs;

int mn_dataset_write(const char *out, const mn_split_data *train, const mn_split_data *test,
                     const mn_dataset_attrs *attrs, mn_err *err);

#endif
