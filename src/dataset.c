#define _DEFAULT_SOURCE /* madvise */
/* dataset.c: validating HDF5 dataset reader (whole split or a hyperslab of rows). */
#include "dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "clones.h"
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

/* Reads rows [begin, begin+n) of an open dataset whose other dimensions are read whole. */
static int read_rows(hid_t d, hid_t mem_type, size_t begin, size_t n, void *out) {
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
  return rc < 0 ? -1 : 0;
}

/* Reads rows [begin, begin + n) of the split meta describes from its open datasets dx, dy
 * into x (as stored: uint8 or float) and labels or targets, and checks them: labels in
 * [0, classes), every float finite. Shared by mn_split_load, the stream's block reads and
 * evaluation's reader. */
static int read_checked(hid_t dx, hid_t dy, const mn_split *meta, size_t begin, size_t n, void *x,
                        int32_t *labels, float *targets, mn_err *err) {
  const char *path = meta->path, *split = meta->split;
  const int classes = meta->info.classes;
  if (n > 0 && (dx < 0 || read_rows(dx, meta->info.x_is_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT,
                                    begin, n, x) != 0))
    return mn_fail(err, "%s: cannot read /%s/x (corrupt or truncated file?)", path, split);
  for (size_t i = 0; !meta->info.x_is_u8 && i < n * meta->row_len; i++)
    if (!isfinite(((const float *)x)[i]))
      return mn_fail(err, "%s: /%s/x has a non-finite value at row %zu", path, split,
                     begin + i / meta->row_len);
  if (n > 0 && (dy < 0 || (labels ? read_rows(dy, H5T_NATIVE_INT32, begin, n, labels)
                                  : read_rows(dy, H5T_NATIVE_FLOAT, begin, n, targets)) != 0))
    return mn_fail(err, "%s: cannot read /%s/y (corrupt or truncated file?)", path, split);
  for (size_t i = 0; labels && i < n; i++)
    if (labels[i] < 0 || labels[i] >= classes)
      return mn_fail(err, "%s: /%s/y[%zu] = %d is outside [0, classes = %d)", path, split,
                     begin + i, labels[i], classes);
  for (size_t i = 0; targets && i < n * (size_t)classes; i++)
    if (!isfinite(targets[i]))
      return mn_fail(err, "%s: /%s/y has a non-finite value at row %zu", path, split,
                     begin + i / (size_t)classes);
  return 0;
}

/* The split's datasets /split/x and /split/y, opened with dapl (H5P_DEFAULT: HDF5's). */
static void open_xy(hid_t f, const mn_split *meta, hid_t dapl_x, hid_t *dx, hid_t *dy) {
  char name[64];
  snprintf(name, sizeof name, "/%s/x", meta->split);
  *dx = H5Dopen2(f, name, dapl_x);
  snprintf(name, sizeof name, "/%s/y", meta->split);
  *dy = H5Dopen2(f, name, H5P_DEFAULT);
}

static int read_file_rows(hid_t f, const mn_split *meta, size_t begin, size_t n, void *x,
                          int32_t *labels, float *targets, mn_err *err) {
  hid_t dx, dy;
  open_xy(f, meta, H5P_DEFAULT, &dx, &dy);
  const int rc = read_checked(dx, dy, meta, begin, n, x, labels, targets, err);
  if (dx >= 0) H5Dclose(dx);
  if (dy >= 0) H5Dclose(dy);
  return rc;
}

static void file_stamp(const char *path, uint64_t stamp[4]) {
  struct stat st;
  memset(stamp, 0, 4 * sizeof *stamp);
  if (stat(path, &st) != 0) return;
  stamp[0] = (uint64_t)st.st_dev;
  stamp[1] = (uint64_t)st.st_ino;
  stamp[2] = (uint64_t)st.st_size;
  stamp[3] = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
}

int mn_split_unchanged(const mn_split *meta, const char *why, mn_err *err) {
  uint64_t now[4];
  file_stamp(meta->path, now);
  if (memcmp(now, meta->stamp, sizeof now) != 0)
    return mn_fail(err, "%s: changed since the job started (%s reads it again); restart the job",
                   meta->path, why);
  return 0;
}

/* Opens the file of a loaded split again, refusing it if it is no longer the same file. */
static hid_t reopen(const mn_split *meta, const char *why, mn_err *err) {
  if (mn_split_unchanged(meta, why, err) != 0) return H5I_INVALID_HID;
  mn_err ignored;
  hid_t f = mn_h5_open_read(meta->path, &ignored);
  if (f < 0) mn_fail(err, "%s: cannot open it again (%s)", meta->path, why);
  return f;
}

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

int mn_split_load(mn_split *s, const char *path, const char *split, size_t begin, size_t end,
                  mn_err *err) {
  memset(s, 0, sizeof *s);
  snprintf(s->path, sizeof s->path, "%s", path);
  snprintf(s->split, sizeof s->split, "%s", split);
  mn_h5_quiet();
  file_stamp(path, s->stamp);
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
  s->x = mn_rows_alloc(values, s->info.x_is_u8 ? 1 : sizeof(float), "dataset", err);
  if (s->info.has_labels)
    s->labels = mn_alloc(s->n, sizeof(int32_t), "labels", err);
  else
    s->targets = mn_alloc(s->n * (size_t)s->info.classes, sizeof(float), "targets", err);
  if (!s->x || !(s->labels || s->targets)) goto out;
  if (read_file_rows(f, s, begin, s->n, s->x, s->labels, s->targets, err) != 0) goto out;
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

/* Rows per chunk of the split's x in the open file f (0: not chunked). */
static long long chunk_rows_in(hid_t f, const mn_split *meta) {
  char name[64];
  snprintf(name, sizeof name, "/%s/x", meta->split);
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  hid_t plist = d >= 0 ? H5Dget_create_plist(d) : -1;
  hsize_t chunk[8] = {0};
  const long long rows =
      plist >= 0 && H5Pget_layout(plist) == H5D_CHUNKED && H5Pget_chunk(plist, 8, chunk) > 0
          ? (long long)chunk[0]
          : 0;
  if (plist >= 0) H5Pclose(plist);
  if (d >= 0) H5Dclose(d);
  return rows;
}

struct mn_split_reader {
  const mn_split *meta;
  hid_t f, dx, dy;
  long long chunk_rows;
};

mn_split_reader *mn_split_reader_open(const mn_split *meta, const char *why, mn_err *err) {
  mn_split_reader *r = mn_alloc(1, sizeof *r, "split reader", err);
  if (!r) return NULL;
  r->meta = meta;
  r->f = reopen(meta, why, err);
  r->dx = r->dy = H5I_INVALID_HID;
  if (r->f < 0) {
    free(r);
    return NULL;
  }
  /* Reads of a few rows each cut through the same compressed chunk many times: a chunk
   * larger than HDF5's chunk cache (1 MiB by default; mpinet's converters write chunks
   * below it, other tools may not) would be inflated whole for every read. A cache that
   * holds one chunk inflates each once per pass. */
  r->chunk_rows = chunk_rows_in(r->f, meta);
  const size_t chunk_bytes =
      (size_t)r->chunk_rows * meta->row_len * (meta->info.x_is_u8 ? 1 : sizeof(float));
  hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  if (chunk_bytes > ((size_t)1 << 20))
    H5Pset_chunk_cache(dapl, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, chunk_bytes,
                       H5D_CHUNK_CACHE_W0_DEFAULT);
  open_xy(r->f, meta, dapl, &r->dx, &r->dy);
  H5Pclose(dapl);
  return r;
}

int mn_split_reader_read(mn_split_reader *r, size_t begin, size_t n, void *x, int32_t *labels,
                         float *targets, mn_err *err) {
  return read_checked(r->dx, r->dy, r->meta, begin, n, x, labels, targets, err);
}

long long mn_split_reader_chunk_rows(const mn_split_reader *r) { return r->chunk_rows; }

void mn_split_reader_close(mn_split_reader *r) {
  if (!r) return;
  if (r->dx >= 0) H5Dclose(r->dx);
  if (r->dy >= 0) H5Dclose(r->dy);
  H5Fclose(r->f);
  free(r);
}

void mn_split_free(mn_split *s) {
  free(s->x);
  free(s->labels);
  free(s->targets);
  s->x = NULL;
  s->labels = NULL;
  s->targets = NULL;
}

MN_CLONES
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
