#define _GNU_SOURCE /* strverscmp */
/* source.c: the files of a dataset, their layout, dtypes and normalisation (see source.h). */
#include "source.h"

#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "h5util.h"

const char *const mn_layout_names[] = {"auto", "nchw", "nhwc", "hw", "tf", "features", NULL};
const char *const mn_normalise_names[] = {"file", "none", "feature", "channel", NULL};

/* ---- the files ---- */

static int by_natural_order(const void *a, const void *b) {
  return strverscmp(*(char *const *)a, *(char *const *)b);
}

static int add_file(mn_source *s, const char *path, size_t *cap, mn_err *err) {
  if (s->nfiles == *cap) {
    *cap = *cap ? 2 * *cap : 16;
    mn_source_file *grown = realloc(s->files, *cap * sizeof *grown);
    if (!grown) return mn_fail(err, "%s: out of memory listing files", s->label);
    s->files = grown;
  }
  mn_source_file *f = &s->files[s->nfiles];
  memset(f, 0, sizeof *f);
  if (!(f->path = strdup(path))) return mn_fail(err, "%s: out of memory listing files", s->label);
  s->nfiles++;
  return 0;
}

/* One item of the path list: a file, a directory (its *.h5 and *.hdf5) or a glob. Matches
 * are taken in natural order: shard-2 before shard-10. */
static int expand(mn_source *s, const char *item, size_t *cap, mn_err *err) {
  struct stat st;
  char pattern[1100];
  if (stat(item, &st) == 0 && !S_ISDIR(st.st_mode)) return add_file(s, item, cap, err);
  const bool dir = stat(item, &st) == 0;
  if (dir)
    snprintf(pattern, sizeof pattern, "%s/*.h5", item);
  else if (!strpbrk(item, "*?["))
    return mn_fail(err, "%s: cannot open (No such file or directory)", item);
  else
    snprintf(pattern, sizeof pattern, "%s", item);
  glob_t g;
  int rc = glob(pattern, 0, NULL, &g);
  if (dir && (rc == 0 || rc == GLOB_NOMATCH)) {
    snprintf(pattern, sizeof pattern, "%s/*.hdf5", item);
    rc = glob(pattern, rc == 0 ? GLOB_APPEND : 0, NULL, &g);
    if (rc == GLOB_NOMATCH && g.gl_pathc > 0) rc = 0;
  }
  if (rc != 0 || g.gl_pathc == 0) {
    if (rc == 0 || rc == GLOB_NOMATCH) globfree(&g);
    return dir ? mn_fail(err, "%s: a directory with no *.h5 or *.hdf5 files", item)
               : mn_fail(err, "%s: matches no file", item);
  }
  qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, by_natural_order);
  rc = 0;
  for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
    if (stat(g.gl_pathv[i], &st) == 0 && S_ISDIR(st.st_mode)) continue;
    rc = add_file(s, g.gl_pathv[i], cap, err);
  }
  globfree(&g);
  return rc;
}

static int list_files(mn_source *s, const char *path, mn_err *err) {
  size_t cap = 0;
  char *copy = strdup(path);
  if (!copy) return mn_fail(err, "%s: out of memory", path);
  int rc = 0;
  char *save = NULL;
  for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
       item = strtok_r(NULL, ",", &save)) {
    while (*item == ' ' || *item == '\t') item++;
    for (char *e = item + strlen(item); e > item && (e[-1] == ' ' || e[-1] == '\t');) *--e = 0;
    if (*item) rc = expand(s, item, &cap, err);
  }
  free(copy);
  if (rc == 0 && s->nfiles == 0) rc = mn_fail(err, "[data] path '%s' names no file", path);
  return rc;
}

void mn_source_stamp(const char *path, uint64_t stamp[4]) {
  struct stat st;
  memset(stamp, 0, 4 * sizeof *stamp);
  if (stat(path, &st) != 0) return;
  stamp[0] = (uint64_t)st.st_dev;
  stamp[1] = (uint64_t)st.st_ino;
  stamp[2] = (uint64_t)st.st_size;
  stamp[3] = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
}

/* ---- probing ---- */

typedef struct {
  int rank;
  hsize_t dim[8];
  H5T_class_t cls;
  size_t size;
  H5T_sign_t sign;
} array_desc;

static void describe(const array_desc *d, char *buf, size_t len, bool with_type) {
  const char *type = "?";
  if (d->cls == H5T_FLOAT)
    type = d->size == 2 ? "float16" : d->size == 4 ? "float32" : "float64";
  else if (d->cls == H5T_INTEGER) {
    static const char *const names[2][4] = {{"int8", "int16", "int32", "int64"},
                                            {"uint8", "uint16", "uint32", "uint64"}};
    const int k = d->size == 1 ? 0 : d->size == 2 ? 1 : d->size == 4 ? 2 : d->size == 8 ? 3 : -1;
    if (k >= 0) type = names[d->sign == H5T_SGN_NONE][k];
  } else
    type = "not a number type";
  int at = with_type ? snprintf(buf, len, "%s ", type) : 0;
  at += snprintf(buf + at, len - (size_t)at, "(");
  for (int k = 0; k < d->rank && (size_t)at < len; k++)
    at += snprintf(buf + at, len - (size_t)at, "%s%llu", k ? ", " : "",
                   (unsigned long long)d->dim[k]);
  if ((size_t)at < len) snprintf(buf + at, len - (size_t)at, ")");
}

/* The shape and type of dataset `name` in f: 0, or -1 if it is not there. */
static int desc_of(hid_t f, const char *name, array_desc *d, long long *chunk_rows) {
  memset(d, 0, sizeof *d);
  if (!mn_h5_exists(f, name)) return -1;
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  if (ds < 0) return -1;
  hid_t sp = H5Dget_space(ds), t = H5Dget_type(ds);
  d->rank = H5Sget_simple_extent_ndims(sp);
  if (d->rank < 0 || d->rank > 8) d->rank = 0;
  H5Sget_simple_extent_dims(sp, d->dim, NULL);
  d->cls = H5Tget_class(t);
  d->size = H5Tget_size(t);
  d->sign = d->cls == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_ERROR;
  if (chunk_rows) {
    hsize_t chunk[8] = {0};
    hid_t plist = H5Dget_create_plist(ds);
    *chunk_rows =
        plist >= 0 && H5Pget_layout(plist) == H5D_CHUNKED && H5Pget_chunk(plist, 8, chunk) > 0
            ? (long long)chunk[0]
            : 0;
    if (plist >= 0) H5Pclose(plist);
  }
  H5Tclose(t), H5Sclose(sp), H5Dclose(ds);
  return 0;
}

static bool same_sample(const array_desc *a, const array_desc *b) {
  if (a->rank != b->rank || a->cls != b->cls || a->size != b->size || a->sign != b->sign)
    return false;
  for (int k = 1; k < a->rank; k++)
    if (a->dim[k] != b->dim[k]) return false;
  return true;
}

/* The model's shape for a stored sample shape and layout; map for channel-last. */
static int resolve_layout(mn_source *s, const array_desc *x, mn_layout layout, mn_err *err) {
  const int r = x->rank - 1; /* the sample's rank */
  int d[8];
  for (int k = 0; k < r; k++) d[k] = (int)x->dim[k + 1];
  s->stored.rank = r < MN_MAX_RANK ? r : MN_MAX_RANK;
  for (int k = 0; k < s->stored.rank; k++) s->stored.dim[k] = d[k];
  char shape[160];
  array_desc sample = *x; /* the shape of one sample: x without its rows */
  sample.rank = r;
  memmove(sample.dim, x->dim + 1, (size_t)r * sizeof *sample.dim);
  describe(&sample, shape, sizeof shape, false);
  static const char *const needs[] = {[MN_LAYOUT_NCHW] = "(C, H, W)",
                                      [MN_LAYOUT_NHWC] = "(H, W, C)",
                                      [MN_LAYOUT_HW] = "(H, W)",
                                      [MN_LAYOUT_TF] = "(T, F)"};
  if (layout == MN_LAYOUT_AUTO) {
    if (r < 1 || r > 3)
      return mn_fail(err,
                     "%s: %s has samples of %d dimensions %s; expected F features, (T, F) or "
                     "(C, H, W), or say [data] layout = features",
                     s->files[0].path, s->x, r, shape);
    layout = r == 1 ? MN_LAYOUT_FEATURES : r == 2 ? MN_LAYOUT_TF : MN_LAYOUT_NCHW;
    if (r == 3 && (d[2] == 1 || d[2] == 3 || d[2] == 4) && d[0] > 4)
      snprintf(s->note, sizeof s->note,
               "%s: %s samples %s are read as (C, H, W) = (%d, %d, %d); if they are "
               "channel-last images, set [data] layout = nhwc",
               s->files[0].path, s->x, shape, d[0], d[1], d[2]);
  }
  const int want = layout == MN_LAYOUT_NCHW || layout == MN_LAYOUT_NHWC ? 3
                   : layout == MN_LAYOUT_HW || layout == MN_LAYOUT_TF   ? 2
                                                                        : 0;
  if (want && r != want)
    return mn_fail(err, "%s: %s has samples of shape %s: layout = %s needs %s samples",
                   s->files[0].path, s->x, shape, mn_layout_names[layout], needs[layout]);
  s->layout = layout;
  mn_shape *m = &s->info.shape;
  switch (layout) {
  case MN_LAYOUT_NHWC: *m = (mn_shape){3, {d[2], d[0], d[1]}}; break;
  case MN_LAYOUT_HW: *m = (mn_shape){3, {1, d[0], d[1]}}; break;
  case MN_LAYOUT_FEATURES: {
    size_t n = 1;
    for (int k = 0; k < r; k++) n *= (size_t)d[k];
    if (n > (1u << 28)) return mn_fail(err, "%s: %s: samples of %zu values", s->label, s->x, n);
    *m = (mn_shape){1, {(int)n}};
    break;
  }
  default:
    m->rank = r;
    for (int k = 0; k < r; k++) m->dim[k] = d[k];
  }
  s->row_len = mn_shape_count(*m);
  if (layout == MN_LAYOUT_NHWC) {
    const size_t C = (size_t)d[2], HW = (size_t)d[0] * (size_t)d[1];
    if (!(s->map = malloc(s->row_len * sizeof *s->map)))
      return mn_fail(err, "%s: out of memory", s->label);
    for (size_t c = 0; c < C; c++)
      for (size_t p = 0; p < HW; p++) s->map[c * HW + p] = (uint32_t)(p * C + c);
  }
  return 0;
}

/* Reads a numeric attribute of obj into v (up to max values): its length, or -1 if absent
 * (or not numbers: -2). */
static int attr_doubles(hid_t obj, const char *name, double *v, int max) {
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
  const H5T_class_t cls = H5Tget_class(t);
  const hssize_t n = H5Sget_simple_extent_npoints(sp);
  int rc = -2;
  if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n >= 1) {
    rc = (int)(n > 1 << 24 ? 1 << 24 : n);
    if (n <= max && H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0) rc = -2;
  }
  H5Sclose(sp), H5Tclose(t), H5Aclose(a);
  return rc;
}

int mn_source_stat_count(const mn_source *s, mn_normalise how) {
  const mn_shape *m = &s->info.shape;
  if (how == MN_NORMALISE_CHANNEL) return m->rank == 3 ? m->dim[0] : 0;
  if (how == MN_NORMALISE_FEATURE) return m->rank == 3 ? 0 : m->dim[m->rank - 1];
  return 0;
}

int mn_source_stat_of(const mn_source *s, mn_normalise how, size_t j) {
  const mn_shape *m = &s->info.shape;
  if (how == MN_NORMALISE_CHANNEL) return (int)(j / ((size_t)m->dim[1] * (size_t)m->dim[2]));
  return (int)(j % (size_t)m->dim[m->rank - 1]);
}

/* Fills a and b from a scale and mean/std given per statistic (count 1: one for all). */
static void fill_ab(mn_source *s, mn_normalise how, const double *mean, const double *std,
                    int count) {
  for (size_t j = 0; j < s->row_len; j++) {
    const int k = count > 1 ? mn_source_stat_of(s, how, j) : 0;
    s->a[j] = (float)(s->scale / std[k]);
    s->b[j] = (float)(-mean[k] / std[k]);
  }
}

/* The files' scale, mean and std attributes (on x, else at the root of the first file):
 * numbers, or arrays with one value per feature or per channel; any other length is an
 * error, never ignored. */
static int read_normalisation(mn_source *s, hid_t f, mn_normalise normalise, mn_err *err) {
  hid_t dx = H5Dopen2(f, s->x, H5P_DEFAULT);
  const int per_feature = mn_source_stat_count(s, MN_NORMALISE_FEATURE),
            per_channel = mn_source_stat_count(s, MN_NORMALISE_CHANNEL);
  const int most = per_feature > per_channel ? per_feature : per_channel;
  double *v[2] = {malloc((size_t)(most + 1) * sizeof(double)),
                  malloc((size_t)(most + 1) * sizeof(double))};
  static const char *const names[] = {"mean", "std"};
  int count[2] = {0, 0}, rc = 0;
  bool scale_found = false;
  const mn_normalise how = per_channel ? MN_NORMALISE_CHANNEL : MN_NORMALISE_FEATURE;
  s->scale = s->info.x_is_u8 ? 1.0 / 255.0 : 1.0;
  if (!v[0] || !v[1]) rc = mn_fail(err, "%s: out of memory", s->label);
  for (int pass = 0; pass < 2 && rc == 0; pass++) { /* x's attributes, then the file's */
    const hid_t obj = pass == 0 ? dx : f;
    const char *where = pass == 0 ? s->x : "/";
    if (obj < 0) continue;
    double one;
    const int ns = attr_doubles(obj, "scale", &one, 1);
    if (ns == -2 || ns > 1)
      rc = mn_fail(err, "%s: attribute 'scale' of %s is %s; it must be one number",
                   s->files[0].path, where, ns > 1 ? "an array" : "not a number");
    else if (ns == 1 && !scale_found) /* x's own, else the file's */
      s->scale = one, scale_found = true;
    for (int k = 0; k < 2 && rc == 0; k++) {
      if (count[k] || normalise != MN_NORMALISE_FILE) continue;
      const int n = attr_doubles(obj, names[k], v[k], most + 1);
      if (n == -2)
        rc = mn_fail(err, "%s: attribute '%s' of %s is not numbers", s->files[0].path, names[k],
                     where);
      else if (n > 1 && n != most)
        rc = mn_fail(err,
                     "%s: attribute '%s' of %s has %d values; it must be one number, or one per "
                     "%s (%d)",
                     s->files[0].path, names[k], where, n, per_channel ? "channel" : "feature",
                     most);
      else if (n > 0)
        count[k] = n;
    }
  }
  if (dx >= 0) H5Dclose(dx);
  if (rc == 0 && count[0] > 1 && count[1] > 1 && count[0] != count[1])
    rc = mn_fail(err, "%s: attributes 'mean' (%d values) and 'std' (%d) differ in length",
                 s->files[0].path, count[0], count[1]);
  /* one length for both: a single number is repeated */
  const int n = count[0] > count[1] ? count[0] : count[1] > 0 ? count[1] : 1;
  for (int k = 0; k < 2 && rc == 0; k++) {
    const double fill = count[k] == 1 ? v[k][0] : k == 0 ? 0.0 : 1.0;
    if (count[k] <= 1)
      for (int i = 0; i < n; i++) v[k][i] = fill;
  }
  for (int i = 0; i < n && rc == 0; i++)
    if (!isfinite(v[0][i]) || !isfinite(v[1][i]) || !(v[1][i] > 0.0))
      rc = mn_fail(err, "%s: attributes mean/std must be finite and std > 0 (value %d)",
                   s->files[0].path, i);
  if (rc == 0 && (!isfinite(s->scale) || s->scale == 0.0))
    rc = mn_fail(err, "%s: attribute 'scale' must be finite and not 0", s->files[0].path);
  if (rc == 0) {
    fill_ab(s, how, v[0], v[1], n);
    snprintf(s->norm, sizeof s->norm, "%s",
             normalise == MN_NORMALISE_NONE ? "none (scale only)"
             : count[0] + count[1] == 0     ? "file (no mean/std: scale only)"
             : n > 1 ? (how == MN_NORMALISE_CHANNEL ? "file, per channel" : "file, per feature")
                     : "file");
  }
  free(v[0]), free(v[1]);
  return rc;
}

/* Probes every file: x and y there, y as long as x, the same sample shape and dtypes as the
 * first file. */
static int probe(mn_source *s, const mn_source_spec *spec, mn_err *err) {
  array_desc x0, y0, x, y;
  hid_t first = H5I_INVALID_HID;
  int rc = 0;
  const bool want_y = s->y[0] != 0;
  size_t total = 0;
  for (size_t i = 0; i < s->nfiles && rc == 0; i++) {
    mn_source_file *fi = &s->files[i];
    mn_source_stamp(fi->path, fi->stamp);
    hid_t f = mn_h5_open_read(fi->path, err);
    if (f < 0) {
      rc = -1;
      break;
    }
    array_desc *dx = i == 0 ? &x0 : &x, *dy = i == 0 ? &y0 : &y;
    char a[160], b[160];
    if (desc_of(f, s->x, dx, &fi->chunk_rows) != 0)
      rc = mn_fail(err,
                   "%s: no dataset %s (name the dataset that holds the samples: [data] x, or "
                   "--x for eval and predict; mpinet info lists them)",
                   fi->path, s->x);
    else if (want_y && desc_of(f, s->y, dy, NULL) != 0)
      rc =
          mn_fail(err, "%s: no dataset %s (set [data] y to the labels or targets)", fi->path, s->y);
    else if (dx->rank < 2 && i == 0)
      rc = mn_fail(err, "%s: %s has %d dimension%s; expected (rows, ...) samples", fi->path, s->x,
                   dx->rank, dx->rank == 1 ? "" : "s");
    else if (dx->cls != H5T_INTEGER && dx->cls != H5T_FLOAT)
      rc = mn_fail(err, "%s: %s holds neither integers nor floats", fi->path, s->x);
    else if (i > 0 && !same_sample(&x0, dx))
      describe(&x0, a, sizeof a, true), describe(dx, b, sizeof b, true),
          rc = mn_fail(err,
                       "%s: %s is %s but %s has %s (every file must hold the same sample "
                       "shape and dtype)",
                       fi->path, s->x, b, s->files[0].path, a);
    else if (want_y && i > 0 && !same_sample(&y0, dy))
      describe(&y0, a, sizeof a, true), describe(dy, b, sizeof b, true),
          rc = mn_fail(err,
                       "%s: %s is %s but %s has %s (every file must hold the same shape "
                       "and dtype)",
                       fi->path, s->y, b, s->files[0].path, a);
    else if (want_y && dy->dim[0] != dx->dim[0])
      rc = mn_fail(err, "%s: %s has %llu rows but %s has %llu", fi->path, s->x,
                   (unsigned long long)dx->dim[0], s->y, (unsigned long long)dy->dim[0]);
    for (int k = 1; rc == 0 && i == 0 && k < dx->rank; k++)
      if (dx->dim[k] == 0 || dx->dim[k] > (1u << 24))
        rc = mn_fail(err, "%s: %s dimension %d is %llu", fi->path, s->x, k,
                     (unsigned long long)dx->dim[k]);
    if (rc == 0) {
      fi->rows = dx->dim[0];
      total += fi->rows;
    }
    if (i == 0 && rc == 0)
      first = f;
    else
      H5Fclose(f);
  }
  if (rc == 0 && (total == 0 || total > UINT32_MAX))
    rc = mn_fail(err, "%s: %s has %zu rows in all (need 1 to 2^32-1)", s->label, s->x, total);
  if (rc == 0) {
    s->info.rows = total;
    s->info.x_is_u8 = x0.cls == H5T_INTEGER && x0.size == 1 && x0.sign == H5T_SGN_NONE;
    s->x_elem = s->info.x_is_u8 ? 1 : sizeof(float);
    rc = resolve_layout(s, &x0, spec->layout, err);
  }
  if (rc == 0 && want_y) {
    const bool int_y = y0.cls == H5T_INTEGER;
    if (int_y && (y0.rank == 1 || (y0.rank == 2 && y0.dim[1] == 1))) {
      s->info.has_labels = true;
      long long classes = spec->classes;
      if (classes <= 0 && mn_h5_read_attr_long(first, "classes", &classes) != 0) {
        hid_t dy = H5Dopen2(first, s->y, H5P_DEFAULT);
        if (dy < 0 || mn_h5_read_attr_long(dy, "classes", &classes) != 0) classes = 0;
        if (dy >= 0) H5Dclose(dy);
      }
      if (classes < 2 || classes > 1000000)
        rc = mn_fail(err,
                     "%s: %s holds integer labels: say how many classes with [data] classes = K "
                     "(or a file attribute 'classes'), K >= 2",
                     s->files[0].path, s->y);
      s->info.classes = (int)classes;
    } else if (y0.cls == H5T_FLOAT && (y0.rank == 1 || y0.rank == 2)) {
      s->info.classes = y0.rank == 2 ? (int)y0.dim[1] : 1;
      if (s->info.classes < 1)
        rc = mn_fail(err, "%s: %s has no target columns", s->files[0].path, s->y);
    } else {
      char a[160];
      describe(&y0, a, sizeof a, true);
      rc = mn_fail(err, "%s: %s is %s; expected integer labels (n) or float targets (n) or (n, k)",
                   s->files[0].path, s->y, a);
    }
  }
  if (rc == 0) {
    s->a = malloc(s->row_len * sizeof *s->a);
    s->b = malloc(s->row_len * sizeof *s->b);
    if (!s->a || !s->b) rc = mn_fail(err, "%s: out of memory", s->label);
  }
  if (rc == 0) rc = read_normalisation(s, first, spec->normalise, err);
  if (first >= 0) H5Fclose(first);
  return rc;
}

static int one_segment_per_file(mn_source *s, mn_err *err) {
  s->seg = malloc(s->nfiles * sizeof *s->seg);
  s->seg_start = malloc((s->nfiles + 1) * sizeof *s->seg_start);
  if (!s->seg || !s->seg_start) return mn_fail(err, "%s: out of memory", s->label);
  size_t at = 0;
  s->nseg = 0;
  for (size_t i = 0; i < s->nfiles; i++) {
    if (s->files[i].rows == 0) continue;
    s->seg[s->nseg] = (mn_source_segment){i, 0, s->files[i].rows};
    s->seg_start[s->nseg++] = at;
    at += s->files[i].rows;
  }
  s->seg_start[s->nseg] = at;
  return 0;
}

int mn_source_open(mn_source *s, const mn_source_spec *spec, mn_err *err) {
  memset(s, 0, sizeof *s);
  snprintf(s->label, sizeof s->label, "%s", spec->path);
  snprintf(s->x, sizeof s->x, "%s", spec->x);
  snprintf(s->y, sizeof s->y, "%s", spec->y ? spec->y : "");
  s->normalise = spec->normalise;
  s->max_open = spec->max_open > 0 ? spec->max_open : 16;
  mn_h5_quiet();
  int rc = list_files(s, spec->path, err);
  if (rc == 0) rc = probe(s, spec, err);
  if (rc == 0) rc = one_segment_per_file(s, err);
  if (rc == 0 && (s->normalise == MN_NORMALISE_FEATURE || s->normalise == MN_NORMALISE_CHANNEL) &&
      mn_source_stat_count(s, s->normalise) == 0) {
    char shape[64];
    mn_shape_format(s->info.shape, shape, sizeof shape);
    rc = mn_fail(err, "%s: normalise = %s needs %s, but its samples are %s", s->label,
                 mn_normalise_names[s->normalise],
                 s->normalise == MN_NORMALISE_CHANNEL ? "(C, H, W) images"
                                                      : "features or (T, F) "
                                                        "sequences",
                 shape);
  }
  if (rc != 0) mn_source_free(s);
  return rc;
}

int mn_source_open_split(mn_source *s, const char *path, const char *split, mn_err *err) {
  char x[64], y[64];
  snprintf(x, sizeof x, "/%s/x", split);
  snprintf(y, sizeof y, "/%s/y", split);
  const mn_source_spec spec = {.path = path, .x = x, .y = y};
  return mn_source_open(s, &spec, err);
}

void mn_source_free(mn_source *s) {
  for (size_t i = 0; i < s->nfiles; i++) free(s->files[i].path);
  free(s->files), free(s->seg), free(s->seg_start), free(s->a), free(s->b), free(s->map);
  free(s->ta), free(s->tb), free(s->target_mean), free(s->target_std);
  memset(s, 0, sizeof *s);
}

static int set_targets(mn_source *s, const float *mean, const float *std, mn_err *err) {
  const size_t k = (size_t)s->info.classes;
  if (!s->ta) {
    s->ta = malloc(k * sizeof *s->ta), s->tb = malloc(k * sizeof *s->tb);
    s->target_mean = malloc(k * sizeof *s->ta), s->target_std = malloc(k * sizeof *s->tb);
    if (!s->ta || !s->tb || !s->target_mean || !s->target_std)
      return mn_fail(err, "%s: out of memory", s->label);
  }
  for (size_t i = 0; i < k; i++) {
    if (!isfinite(mean[i]) || !isfinite(std[i]) || !(std[i] > 0.0f))
      return mn_fail(err, "%s: target %zu has mean %g and std %g: cannot standardise by it",
                     s->label, i, mean[i], std[i]);
    s->target_mean[i] = mean[i], s->target_std[i] = std[i];
    s->ta[i] = 1.0f / std[i];
    s->tb[i] = -mean[i] / std[i];
  }
  return 0;
}

int mn_source_match(mn_source *test, const mn_source *s, mn_err *err) {
  char a[64], b[64];
  mn_shape_format(test->info.shape, a, sizeof a);
  mn_shape_format(s->info.shape, b, sizeof b);
  if (strcmp(a, b) != 0)
    return mn_fail(err, "%s: %s samples are %s but the training rows' (%s %s) are %s",
                   test->files[0].path, test->x, a, s->label, s->x, b);
  if (test->info.has_labels != s->info.has_labels || test->info.classes != s->info.classes)
    return mn_fail(err, "%s: %s holds %d %s but the training rows' %s hold %d %s",
                   test->files[0].path, test->y, test->info.classes,
                   test->info.has_labels ? "classes" : "target columns", s->y, s->info.classes,
                   s->info.has_labels ? "classes" : "target columns");
  if (test->info.x_is_u8 != s->info.x_is_u8)
    return mn_fail(err,
                   "%s: %s is %s but the training rows' %s %s: the training rows' scaling "
                   "would not fit (store both alike)",
                   test->files[0].path, test->x, test->info.x_is_u8 ? "uint8" : "not uint8", s->x,
                   s->info.x_is_u8 ? "are uint8" : "are not");

  test->scale = s->scale;
  memcpy(test->a, s->a, s->row_len * sizeof *s->a);
  memcpy(test->b, s->b, s->row_len * sizeof *s->b);
  snprintf(test->norm, sizeof test->norm, "%s", s->norm);
  return s->ta ? set_targets(test, s->target_mean, s->target_std, err) : 0;
}

int mn_source_set_stats(mn_source *s, const double *mean, const double *std, int count,
                        mn_err *err) {
  const mn_normalise how = s->normalise;
  if (count != mn_source_stat_count(s, how))
    return mn_fail(err, "%s: %d normalisation statistics for %d %ss", s->label, count,
                   mn_source_stat_count(s, how),
                   how == MN_NORMALISE_CHANNEL ? "channel" : "feature");
  for (int i = 0; i < count; i++)
    if (!isfinite(mean[i]) || !isfinite(std[i]) || !(std[i] > 0.0))
      return mn_fail(err, "%s: %s %d has mean %g and std %g: cannot normalise by it", s->label,
                     how == MN_NORMALISE_CHANNEL ? "channel" : "feature", i, mean[i], std[i]);
  fill_ab(s, how, mean, std, count);
  snprintf(s->norm, sizeof s->norm, "%s (mean and std of the training rows, %d values)",
           mn_normalise_names[how], count);
  return 0;
}

int mn_source_set_target_stats(mn_source *s, const double *mean, const double *std, mn_err *err) {
  if (s->info.has_labels)
    return mn_fail(err, "%s: standardise_targets needs float targets, but %s holds labels",
                   s->label, s->y);
  const int k = s->info.classes;
  float *m = malloc((size_t)k * sizeof *m), *d = malloc((size_t)k * sizeof *d);
  int rc = m && d ? 0 : mn_fail(err, "%s: out of memory", s->label);
  for (int i = 0; rc == 0 && i < k; i++) m[i] = (float)mean[i], d[i] = (float)std[i];
  if (rc == 0) rc = set_targets(s, m, d, err);
  free(m), free(d);
  return rc;
}

int mn_source_set_input(mn_source *s, const float *a, const float *b, size_t len,
                        const float *target_mean, const float *target_std, int ntargets,
                        mn_err *err) {
  if (len != s->row_len)
    return mn_fail(err, "%s: %s samples have %zu values but the checkpoint's model takes %zu",
                   s->label, s->x, s->row_len, len);
  memcpy(s->a, a, len * sizeof *a);
  memcpy(s->b, b, len * sizeof *b);
  snprintf(s->norm, sizeof s->norm, "as the checkpoint's run");
  if (!target_mean || !s->y[0] || s->info.has_labels) return 0;
  if (ntargets != s->info.classes)
    return mn_fail(err, "%s: %s has %d target columns but the checkpoint's model %d", s->label,
                   s->y, s->info.classes, ntargets);
  return set_targets(s, target_mean, target_std, err);
}
