/* info.c: prints a file's kind, its root attributes and every array with shape and type, so
 * users can see what a dataset or checkpoint holds without h5dump. */
#include "info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "h5util.h"

static const char *type_name(hid_t t) {
  const size_t size = H5Tget_size(t);
  switch (H5Tget_class(t)) {
  case H5T_INTEGER: {
    static const char *const u[] = {"uint8", "uint16", "uint32", "uint64"};
    static const char *const s[] = {"int8", "int16", "int32", "int64"};
    const int k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : size == 8 ? 3 : -1;
    return k < 0 ? "int" : H5Tget_sign(t) == H5T_SGN_NONE ? u[k] : s[k];
  }
  case H5T_FLOAT: return size == 2 ? "float16" : size == 4 ? "float32" : "float64";
  case H5T_STRING: return "string";
  default: return "other";
  }
}

static herr_t print_attr(hid_t obj, const char *name, const H5A_info_t *ainfo, void *data) {
  (void)ainfo, (void)data;
  if (strcmp(name, "config") == 0) return 0; /* printed last, it is long */
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = H5Aget_type(a);
  H5T_class_t cls = H5Tget_class(t);
  H5Tclose(t);
  H5Aclose(a);
  if (cls == H5T_STRING) {
    char *s = mn_h5_read_attr_string(obj, name);
    printf("  %-20s %s\n", name, s ? s : "?");
    free(s);
  } else if (cls == H5T_INTEGER) {
    long long v = 0;
    mn_h5_read_attr_long(obj, name, &v);
    printf("  %-20s %lld\n", name, v);
  } else if (cls == H5T_FLOAT) {
    double v = 0;
    mn_h5_read_attr_double(obj, name, &v);
    printf("  %-20s %g\n", name, v);
  }
  return 0;
}

/* The datasets seen, for the suggested [data] keys. */
enum { MAX_SEEN = 64 };
typedef struct {
  char name[MAX_SEEN][256];
  int rank[MAX_SEEN];
  hsize_t dims[MAX_SEEN][8];
  bool integer[MAX_SEEN];
  int n;
} seen_set;

static herr_t print_object(hid_t loc, const char *name, const H5O_info_t *info, void *data) {
  seen_set *seen = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
  hid_t s = H5Dget_space(d), t = H5Dget_type(d);
  hsize_t dims[8];
  int rank = H5Sget_simple_extent_ndims(s);
  H5Sget_simple_extent_dims(s, dims, NULL);
  char shape[160] = "(";
  for (int i = 0; i < rank; i++)
    snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", i ? ", " : "",
             (unsigned long long)dims[i]);
  printf("  /%-34s %-8s %s)\n", name, type_name(t), shape);
  if (seen && seen->n < MAX_SEEN && rank >= 1 && rank <= 8) {
    const int i = seen->n++;
    snprintf(seen->name[i], sizeof seen->name[i], "/%s", name);
    seen->rank[i] = rank;
    memcpy(seen->dims[i], dims, (size_t)rank * sizeof *dims);
    seen->integer[i] = H5Tget_class(t) == H5T_INTEGER;
  }
  H5Tclose(t), H5Sclose(s), H5Dclose(d);
  return 0;
}

static bool named_like(const char *name, const char *const *words) {
  const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
  for (int i = 0; words[i]; i++)
    if (strcasecmp(base, words[i]) == 0) return true;
  return false;
}

/* The largest label + 1 of an integer dataset (0 if it cannot be read or is too large). */
static long long label_count(hid_t f, const char *name, hsize_t n) {
  if (n > ((hsize_t)1 << 26)) return 0;
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  long long *v = malloc((size_t)n * sizeof *v + 1), most = -1;
  if (d >= 0 && v && H5Dread(d, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0)
    for (hsize_t i = 0; i < n; i++) most = v[i] > most ? v[i] : most;
  free(v);
  if (d >= 0) H5Dclose(d);
  return most + 1;
}

/* Suggests the [data] keys that would read a file mpinet did not write: x is the largest
 * array of rank 2 or more, y an array with as many rows (labels or targets). */
static void suggest(hid_t f, const char *path, const seen_set *s) {
  if (mn_h5_exists(f, "/train/x") && mn_h5_exists(f, "/train/y")) {
    printf("suggested [data] keys: mpinet's own layout, so only\n  path = %s\n", path);
    return;
  }
  static const char *const y_words[] = {"y",      "label",   "labels", "target",  "targets",
                                        "output", "outputs", "class",  "classes", NULL};
  int x = -1, y = -1;
  for (int i = 0; i < s->n; i++) {
    if (s->rank[i] < 2 || named_like(s->name[i], y_words)) continue;
    hsize_t size = 1, best = 1;
    for (int k = 0; k < s->rank[i]; k++) size *= s->dims[i][k];
    for (int k = 0; x >= 0 && k < s->rank[x]; k++) best *= s->dims[x][k];
    if (x < 0 || size > best) x = i;
  }
  for (int i = 0; x >= 0 && i < s->n; i++) {
    if (i == x || s->dims[i][0] != s->dims[x][0] || s->rank[i] > 2) continue;
    if (y < 0 || (named_like(s->name[i], y_words) && !named_like(s->name[y], y_words))) y = i;
  }
  if (x < 0) {
    printf("suggested [data] keys: none (no array of rows of samples)\n");
    return;
  }
  printf("suggested [data] keys (check them):\n  path = %s\n  x = %s\n", path, s->name[x]);
  if (y >= 0) printf("  y = %s\n", s->name[y]);
  const hsize_t *d = s->dims[x];
  if (s->rank[x] == 4 && (d[3] == 1 || d[3] == 3 || d[3] == 4) && d[1] > 4)
    printf("  layout = nhwc        ; (n, %llu, %llu, %llu) looks like channel-last images\n",
           (unsigned long long)d[1], (unsigned long long)d[2], (unsigned long long)d[3]);
  else if (s->rank[x] == 3)
    printf("  layout = tf          ; (n, %llu, %llu): T steps of F features; or hw for grayscale "
           "images\n",
           (unsigned long long)d[1], (unsigned long long)d[2]);
  else if (s->rank[x] > 4)
    printf("  layout = features    ; samples of %d dimensions, flattened\n", s->rank[x] - 1);
  long long classes = 0;
  if (y >= 0 && s->integer[y] && mn_h5_read_attr_long(f, "classes", &classes) != 0)
    printf("  classes = %lld         ; the largest label + 1 (no 'classes' attribute)\n",
           label_count(f, s->name[y], s->dims[y][0]));
  if (y >= 0 && !s->integer[y])
    printf("  standardise_targets = true ; float targets: regression (with [train] loss = mse)\n");
  printf("  test_fraction = 0.1  ; no test datasets found: hold out 10%% (or test_path, test_x, "
         "test_y)\n");
}

int mn_info_main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf("usage: mpinet info FILE.h5\n"
           "Shows what an HDF5 file holds: its kind, attributes (classes, scale, step, epoch,\n"
           "world size, ...) and every array with its type and shape; for a data file, the\n"
           "[data] keys that would read it.\n");
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: mpinet info FILE.h5\n");
    return 2;
  }
  mn_err err;
  mn_h5_quiet();
  hid_t f = mn_h5_open_read(argv[1], &err);
  if (f < 0) {
    fprintf(stderr, "mpinet: error: %s\n", err.msg);
    return 1;
  }
  char *format = mn_h5_read_attr_string(f, "format");
  printf("%s: %s\n", argv[1], format ? format : "HDF5 file (not written by mpinet)");
  printf("attributes:\n");
  hsize_t idx = 0;
  H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, print_attr, NULL);
  printf("arrays:\n");
  seen_set *seen = calloc(1, sizeof *seen);
  H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, print_object, seen);
  const bool checkpoint = format && strcmp(format, "mpinet-checkpoint") == 0;
  char *config = mn_h5_read_attr_string(f, "config");
  if (config && config[0]) printf("config:\n%s", config);
  free(config);
  if (!checkpoint && seen && !(format && strcmp(format, "mpinet-predictions") == 0))
    suggest(f, argv[1], seen);
  free(seen);
  free(format);
  H5Fclose(f);
  return 0;
}
