/* convert.h: `mpinet convert ...` subcommands; each returns a process exit code. */
#ifndef MN_CONVERT_H
#define MN_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* One idx file (MNIST-style): a uint8 array with up to 3 dimensions. */
typedef struct {
  int ndims;
  uint32_t dims[3];
  uint8_t *data; /* malloc'ed; free() it */
  size_t size;
} mn_idx_file;

/* Reads and validates an idx file (gzip or plain) with want_dims dimensions. */
int mn_idx_read(const char *path, int want_dims, mn_idx_file *out, mn_err *err);

int mn_convert_idx_main(int argc, char **argv);
int mn_convert_synthetic_main(int argc, char **argv);
int mn_convert_csv_main(int argc, char **argv);

#endif
