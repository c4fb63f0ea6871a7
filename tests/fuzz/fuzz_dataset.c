/* fuzz_dataset.c: libFuzzer target for the HDF5 dataset validation: any bytes as a dataset
 * file, probed and loaded. Crashes inside libhdf5 itself on malformed files are HDF5's (the
 * run script says which library a crash is in). */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "dataset.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  if (fuzz_write_file(data, size, "h5", ".h5", path, sizeof path) != 0) return 0;
  mn_source src;
  mn_split s;
  mn_err err;
  if (mn_source_open_split(&src, path, "train", &err) == 0) {
    if (mn_split_load(&s, &src, 0, SIZE_MAX, &err) == 0) mn_split_free(&s);
    mn_source_free(&src);
  }
  unlink(path);
  return 0;
}
