/* h5_writer.c: dataset files in the layout of README "Files": chunked, Fletcher32-checked,
 * compressed (uint8 images, unless asked not to), with self-describing attributes; written to
 * OUT.tmp and renamed into place so a failed conversion never leaves a half-written OUT behind. */
#define _POSIX_C_SOURCE 200809L
#include "h5_writer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "h5util.h"

static int write_split(hid_t f, const char *name, const mn_split_data *s, bool plain_x) {
  hid_t g = H5Gcreate2(f, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  /* uint8 pixels compress well (Fashion-MNIST: about 3:1); float features hardly at all
   * (about 1.2:1) while gzip would cost every read, streaming included, ~150 MB/s of CPU:
   * float x is stored uncompressed (still chunked, still Fletcher32-checked), and so is
   * uint8 x on request (plain_x: every rank of a job inflates the rows it holds at start-up,
   * ~0.2 s of the MLP's 0.56 s from launch to first step here) */
  int rc = mn_h5_write_array(g, "x", s->x_is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, s->rank,
                             s->dims, s->x, s->x_is_u8 && !plain_x);
  if (rc == 0 && s->labels)
    rc = mn_h5_write_array(g, "y", H5T_NATIVE_INT32, 1, s->dims, s->labels, true);
  else if (rc == 0) {
    size_t td[2] = {s->dims[0], (size_t)s->target_width};
    rc = mn_h5_write_array(g, "y", H5T_NATIVE_FLOAT, 2, td, s->targets, true);
  }
  H5Gclose(g);
  return rc;
}

/* Mean and standard deviation of x * scale over the training rows. */
static void moments(const mn_split_data *s, double scale, double *mean, double *std) {
  size_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->dims[i];
  double sum = 0.0, sq = 0.0;
  for (size_t i = 0; i < n; i++) {
    double v = (s->x_is_u8 ? ((const uint8_t *)s->x)[i] : ((const float *)s->x)[i]) * scale;
    sum += v;
    sq += v * v;
  }
  *mean = sum / (double)n;
  double var = sq / (double)n - *mean * *mean;
  *std = var > 1e-12 ? sqrt(var) : 1.0;
}

int mn_dataset_write(const char *out, const mn_split_data *train, const mn_split_data *test,
                     const mn_dataset_attrs *attrs, mn_err *err) {
  char tmp[1100];
  snprintf(tmp, sizeof tmp, "%s.tmp", out);
  mn_h5_quiet();
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return mn_fail(err, "%s: cannot create", tmp);
  int rc = write_split(f, "train", train, attrs->plain_x);
  if (rc == 0) rc = write_split(f, "test", test, attrs->plain_x);
  if (rc == 0) {
    mn_h5_write_attr_string(f, "format", "mpinet-dataset");
    mn_h5_write_attr_long(f, "format_version", 1);
    if (attrs->classes > 0) mn_h5_write_attr_long(f, "classes", attrs->classes);
    mn_h5_write_attr_double(f, "scale", attrs->scale);
    if (attrs->source) mn_h5_write_attr_string(f, "source", attrs->source);
    if (attrs->class_names) mn_h5_write_attr_string(f, "class_names", attrs->class_names);
    if (attrs->normalise) {
      double mean, std;
      moments(train, attrs->scale, &mean, &std);
      mn_h5_write_attr_double(f, "mean", mean);
      mn_h5_write_attr_double(f, "std", std);
    }
  }
  if (H5Fclose(f) < 0) rc = -1;
  if (rc != 0) {
    unlink(tmp);
    return mn_fail(err, "%s: writing failed (disk full?)", tmp);
  }
  if (rename(tmp, out) != 0) {
    unlink(tmp);
    return mn_fail(err, "%s: cannot rename into place", out);
  }
  return 0;
}
