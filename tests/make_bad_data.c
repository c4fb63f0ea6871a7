/* make_bad_data.c: writes small datasets that are broken in one specific way, for the
 * bad-input tests.   make_bad_data KIND OUT.h5   with KIND one of:
 *   no-train-x     /train/x deleted
 *   label-range    a training label equal to the class count
 *   row-mismatch   /train/y shorter than /train/x
 *   nan-x          a NaN among the training values (row 5)
 *   huge-last-row  a valid file whose last training row holds 3e38 (the loss overflows
 *                  when a batch takes it: a NaN on the one rank that holds that row) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "h5_writer.h"
#include "h5util.h"

enum { N = 64, F = 8, K = 3 };

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr,
            "usage: make_bad_data no-train-x|label-range|row-mismatch|nan-x|huge-last-row OUT.h5\n");
    return 2;
  }
  const char *kind = argv[1], *out = argv[2];
  static float x[N * F];
  static int32_t y[N];
  for (int i = 0; i < N * F; i++) x[i] = (float)(i % 7) - 3.0f;
  if (strcmp(kind, "huge-last-row") == 0)
    for (int j = 0; j < F; j++) x[(N - 1) * F + j] = 3e38f;
  const bool nan_x = strcmp(kind, "nan-x") == 0;
  if (nan_x) x[5 * F + 2] = NAN;
  for (int i = 0; i < N; i++) y[i] = i % K;
  bool label_range = strcmp(kind, "label-range") == 0;
  if (label_range) y[N / 2] = K; /* one past the last class */
  size_t rows = strcmp(kind, "row-mismatch") == 0 ? N - 1 : N;
  mn_split_data split = {.x = x, .rank = 2, .dims = {N, F}, .labels = y};
  mn_dataset_attrs attrs = {.classes = K, .scale = 1.0, .source = "make_bad_data"};
  mn_err err;
  if (mn_dataset_write(out, &split, &split, &attrs, &err) != 0) {
    fprintf(stderr, "make_bad_data: %s\n", err.msg);
    return 1;
  }
  hid_t f = H5Fopen(out, H5F_ACC_RDWR, H5P_DEFAULT);
  int rc = 0;
  if (strcmp(kind, "no-train-x") == 0) {
    rc = H5Ldelete(f, "/train/x", H5P_DEFAULT) < 0;
  } else if (rows != N) {
    H5Ldelete(f, "/train/y", H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "/train", H5P_DEFAULT);
    size_t dims[1] = {rows};
    rc = mn_h5_write_array(g, "y", H5T_NATIVE_INT32, 1, dims, y, false) != 0;
    H5Gclose(g);
  } else if (!label_range && !nan_x && strcmp(kind, "huge-last-row") != 0) {
    fprintf(stderr, "make_bad_data: unknown kind %s\n", kind);
    rc = 2;
  }
  H5Fclose(f);
  return rc;
}
