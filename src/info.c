/* info.c: prints a file's kind, its root attributes and every array with shape and type, so
 * users can see what a dataset or checkpoint holds without h5dump. */
#include "info.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "h5util.h"

static const char *type_name(hid_t t) {
  switch (H5Tget_class(t)) {
  case H5T_INTEGER:
    if (H5Tget_size(t) == 1) return H5Tget_sign(t) == H5T_SGN_NONE ? "uint8" : "int8";
    if (H5Tget_size(t) == 4) return H5Tget_sign(t) == H5T_SGN_NONE ? "uint32" : "int32";
    return H5Tget_size(t) == 8 ? "int64" : "int";
  case H5T_FLOAT: return H5Tget_size(t) == 4 ? "float32" : "float64";
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

static herr_t print_object(hid_t loc, const char *name, const H5O_info_t *info, void *data) {
  (void)data;
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
  H5Tclose(t), H5Sclose(s), H5Dclose(d);
  return 0;
}

int mn_info_main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf("usage: mpinet info FILE.h5\n"
           "Shows what an mpinet dataset or checkpoint holds: its kind, attributes (classes,\n"
           "scale, step, epoch, world size, ...) and every array with its type and shape.\n");
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
  free(format);
  printf("attributes:\n");
  hsize_t idx = 0;
  H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, print_attr, NULL);
  printf("arrays:\n");
  H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, print_object, NULL);
  char *config = mn_h5_read_attr_string(f, "config");
  if (config && config[0]) printf("config:\n%s", config);
  free(config);
  H5Fclose(f);
  return 0;
}
