/* fuzz_idx.c: libFuzzer target for the idx reader (MNIST-style files, gzip or plain): any
 * bytes, read as a 1-dimension and as a 3-dimension file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "convert.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  if (fuzz_write_file(data, size, "idx", "", path, sizeof path) != 0) return 0;
  for (int dims = 1; dims <= 3; dims += 2) {
    mn_idx_file idx;
    mn_err err;
    if (mn_idx_read(path, dims, &idx, &err) == 0) free(idx.data);
  }
  unlink(path);
  return 0;
}
