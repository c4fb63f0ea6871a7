/* dataset.c: validating HDF5 dataset reader (whole split or a hyperslab of rows). */
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"

/* Checks that /split/x and /split/y exist with compatible shapes and types. */
static int probe_open(hid_t f, const char *path, const char *split, mn_split_info *info,
                      mn_err *err) {
  char xname[64], yname[64];
  snprintf(xname, sizeof xname, "/%s/x", split);
  snprintf(yname, sizeof yname, "/%s/y", split);
  if (!mn_h5_exists(f, xname)) return mn_fail(err, "%s: no dataset %s", path, xname);
  if (!mn_h5_exists(f, yname)) return mn_fail(err, "%s: no dataset %s", path, yname);

  hid_t x = H5Dopen2(f, xname, H5P_DEFAULT), y = H5Dopen2(f, yname, H5P_DEFAULT);
  hid_t xs = H5Dget_space(x), ys = H5Dget_space(y);
  hid_t xt = H5Dget_type(x), yt = H5Dget_type(y);
  int rc = -1;
  hsize_t xd[8] = {0}, yd[8] = {0};
  int xr = H5Sget_simple_extent_ndims(xs), yr = H5Sget_simple_extent_ndims(ys);
  if (xr < 2 || xr > 4) {
    mn_fail(err, "%s: %s has %d dimensions; expected (n, features), (n, T, F) or (n, C, H, W)",
            path, xname, xr);
    goto out;
  }
  H5Sget_simple_extent_dims(xs, xd, NULL);
  if (yr < 1 || yr > 2) {
    mn_fail(err, "%s: %s has %d dimensions; expected (n) labels or (n, k) targets", path, yname,
            yr);
    goto out;
  }
  H5Sget_simple_extent_dims(ys, yd, NULL);
  if (xd[0] != yd[0]) {
    mn_fail(err, "%s: %s has %llu rows but %s has %llu", path, xname, (unsigned long long)xd[0],
            yname, (unsigned long long)yd[0]);
    goto out;
  }
  if (xd[0] == 0 || xd[0] > UINT32_MAX) {
    mn_fail(err, "%s: %s has %llu rows (need 1 to 2^32-1)", path, xname, (unsigned long long)xd[0]);
    goto out;
  }
  info->rows = xd[0];
  info->shape.rank = xr - 1;
  for (int i = 1; i < xr; i++) {
    if (xd[i] == 0 || xd[i] > (1u << 24)) {
      mn_fail(err, "%s: %s dimension %d is %llu", path, xname, i, (unsigned long long)xd[i]);
      goto out;
    }
    info->shape.dim[i - 1] = (int)xd[i];
  }
  H5T_class_t xc = H5Tget_class(xt);
  if (xc == H5T_INTEGER && H5Tget_size(xt) == 1 && H5Tget_sign(xt) == H5T_SGN_NONE)
    info->x_is_u8 = true;
  else if (xc == H5T_FLOAT)
    info->x_is_u8 = false;
  else {
    mn_fail(err, "%s: %s must be uint8 or float32", path, xname);
    goto out;
  }
  H5T_class_t yc = H5Tget_class(yt);
  if (yc == H5T_INTEGER && yr == 1) {
    info->has_labels = true;
    long long classes;
    if (mn_h5_read_attr_long(f, "classes", &classes) != 0 || classes < 2 || classes > 1000000) {
      mn_fail(err, "%s: integer labels need a root attribute 'classes' >= 2", path);
      goto out;
    }
    info->classes = (int)classes;
  } else if (yc == H5T_FLOAT) {
    info->has_labels = false;
    info->classes = yr == 2 ? (int)yd[1] : 1;
  } else {
    mn_fail(err, "%s: %s must be int32 labels (n) or float32 targets (n, k)", path, yname);
    goto out;
  }
  rc = 0;
out:
  H5Tclose(xt), H5Tclose(yt), H5Sclose(xs), H5Sclose(ys), H5Dclose(x), H5Dclose(y);
  return rc;
}

int mn_split_probe(const char *path, const char *split, mn_split_info *info, mn_err *err) {
  mn_h5_quiet();
  hid_t f = mn_h5_open_read(path, err);
  if (f < 0) return -1;
  int rc = probe_open(f, path, split, info, err);
  H5Fclose(f);
  return rc;
}

/* Reads rows [begin, begin+n) of a dataset whose other dimensions are read whole. */
static int read_rows(hid_t f, const char *name, hid_t mem_type, size_t begin, size_t n, void *out) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t fs = H5Dget_space(d);
  hsize_t dims[8], start[8] = {0}, count[8];
  int r = H5Sget_simple_extent_ndims(fs);
  H5Sget_simple_extent_dims(fs, dims, NULL);
  for (int i = 0; i < r; i++) count[i] = dims[i];
  start[0] = begin;
  count[0] = n;
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t ms = H5Screate_simple(r, count, NULL);
  herr_t rc = H5Dread(d, mem_type, ms, fs, H5P_DEFAULT, out);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(d);
  return rc < 0 ? -1 : 0;
}

/* Reads rows [begin, begin + n) of the split meta describes from the open file f into x (as
 * stored: uint8 or float) and labels or targets, and checks them: labels in [0, classes),
 * every float finite. Shared by mn_split_load and the stream's block reads. */
static int read_checked(hid_t f, const mn_split *meta, size_t begin, size_t n, void *x,
                        int32_t *labels, float *targets, mn_err *err) {
  const char *path = meta->path;
  const int classes = meta->info.classes;
  char name[64];
  snprintf(name, sizeof name, "/%s/x", meta->split);
  if (n > 0 &&
      read_rows(f, name, meta->info.x_is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, begin, n, x) != 0)
    return mn_fail(err, "%s: cannot read %s (corrupt or truncated file?)", path, name);
  for (size_t i = 0; !meta->info.x_is_u8 && i < n * meta->row_len; i++)
    if (!isfinite(((const float *)x)[i]))
      return mn_fail(err, "%s: %s has a non-finite value at row %zu", path, name,
                     begin + i / meta->row_len);
  snprintf(name, sizeof name, "/%s/y", meta->split);
  if (n > 0 && (labels ? read_rows(f, name, H5T_NATIVE_INT32, begin, n, labels)
                       : read_rows(f, name, H5T_NATIVE_FLOAT, begin, n, targets)) != 0)
    return mn_fail(err, "%s: cannot read %s (corrupt or truncated file?)", path, name);
  for (size_t i = 0; labels && i < n; i++)
    if (labels[i] < 0 || labels[i] >= classes)
      return mn_fail(err, "%s: %s[%zu] = %d is outside [0, classes = %d)", path, name, begin + i,
                     labels[i], classes);
  for (size_t i = 0; targets && i < n * (size_t)classes; i++)
    if (!isfinite(targets[i]))
      return mn_fail(err, "%s: %s has a non-finite value at row %zu", path, name,
                     begin + i / (size_t)classes);
  return 0;
}

int mn_split_load(mn_split *s, const char *path, const char *split, size_t begin, size_t end,
                  mn_err *err) {
  memset(s, 0, sizeof *s);
  snprintf(s->path, sizeof s->path, "%s", path);
  snprintf(s->split, sizeof s->split, "%s", split);
  mn_h5_quiet();
  hid_t f = mn_h5_open_read(path, err);
  if (f < 0) return -1;
  int rc = -1;
  if (probe_open(f, path, split, &s->info, err) != 0) goto out;
  if (end > s->info.rows) end = s->info.rows;
  /* begin == end inside the split: no rows, shapes and attributes only (stream.c) */
  if (begin > end || s->info.rows == 0 || (begin == end && begin >= s->info.rows)) {
    mn_fail(err, "%s: /%s has %zu rows; cannot take rows [%zu, %zu)", path, split, s->info.rows,
            begin, end);
    goto out;
  }
  s->begin = begin;
  s->n = end - begin;
  s->row_len = mn_shape_count(s->info.shape);
  size_t values;
  if (mn_mul_size(s->n, s->row_len, &values) != 0) {
    mn_fail(err, "%s: /%s is too large", path, split);
    goto out;
  }
  s->x = mn_alloc(values, s->info.x_is_u8 ? 1 : sizeof(float), "dataset", err);
  if (s->info.has_labels)
    s->labels = mn_alloc(s->n, sizeof(int32_t), "labels", err);
  else
    s->targets = mn_alloc(s->n * (size_t)s->info.classes, sizeof(float), "targets", err);
  if (!s->x || !(s->labels || s->targets)) goto out;
  if (read_checked(f, s, begin, s->n, s->x, s->labels, s->targets, err) != 0) goto out;
  double scale = s->info.x_is_u8 ? 1.0 / 255.0 : 1.0, mean = 0.0, std = 1.0;
  mn_h5_read_attr_double(f, "scale", &scale);
  mn_h5_read_attr_double(f, "mean", &mean);
  mn_h5_read_attr_double(f, "std", &std);
  if (!isfinite(scale) || !isfinite(mean) || !isfinite(std) || std <= 0.0) {
    mn_fail(err, "%s: attributes scale/mean/std must be finite and std > 0", path);
    goto out;
  }
  s->a = (float)(scale / std);
  s->b = (float)(-mean / std);
  rc = 0;
out:
  H5Fclose(f);
  if (rc != 0) mn_split_free(s);
  return rc;
}

int mn_split_read_rows(const mn_split *meta, size_t begin, size_t n, void *x, int32_t *labels,
                       float *targets, mn_err *err) {
  mn_err ignored;
  hid_t f = mn_h5_open_read(meta->path, &ignored);
  if (f < 0) return mn_fail(err, "%s: cannot open it again to stream /%s", meta->path, meta->split);
  const int rc = read_checked(f, meta, begin, n, x, labels, targets, err);
  H5Fclose(f);
  return rc;
}

int mn_split_chunk_rows(const mn_split *meta, long long *rows, mn_err *err) {
  hid_t f = mn_h5_open_read(meta->path, err);
  if (f < 0) return -1;
  char name[64];
  snprintf(name, sizeof name, "/%s/x", meta->split);
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t plist = d >= 0 ? H5Dget_create_plist(d) : -1;
  hsize_t chunk[8] = {0};
  *rows = plist >= 0 && H5Pget_layout(plist) == H5D_CHUNKED && H5Pget_chunk(plist, 8, chunk) > 0
              ? (long long)chunk[0]
              : 0;
  if (plist >= 0) H5Pclose(plist);
  if (d >= 0) H5Dclose(d);
  H5Fclose(f);
  return 0;
}

void mn_split_free(mn_split *s) {
  free(s->x);
  free(s->labels);
  free(s->targets);
  s->x = NULL;
  s->labels = NULL;
  s->targets = NULL;
}

void mn_split_gather(const mn_split *s, const uint32_t *rows, int count, float *x, int32_t *labels,
                     float *targets) {
  const size_t len = s->row_len, row_bytes = len * (s->info.x_is_u8 ? 1 : sizeof(float));
  const float a = s->a, b = s->b;
  /* Rows are random: each starts with cache misses the hardware prefetcher cannot foresee,
   * so ask for the rows a few places ahead while converting this one (the batch assembly
   * was ~90% memory stalls: 91 us for 128 Fashion-MNIST rows). */
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
      const uint8_t *src = (const uint8_t *)s->x + r * len;
      for (size_t j = 0; j < len; j++) dst[j] = (float)src[j] * a + b;
    } else {
      const float *src = (const float *)s->x + r * len;
      for (size_t j = 0; j < len; j++) dst[j] = src[j] * a + b;
    }
    if (s->info.has_labels)
      labels[i] = s->labels[r];
    else
      memcpy(targets + (size_t)i * s->info.classes, s->targets + r * s->info.classes,
             (size_t)s->info.classes * sizeof(float));
  }
}
