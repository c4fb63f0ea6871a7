/* compare_params.c: compares the /params (and /state, where present) of two checkpoints,
 * tensor by tensor.
 *   compare_params A.h5 B.h5 --exact        every byte equal
 *   compare_params A.h5 B.h5 --rtol 1e-5    ||a - b|| / ||b|| <= rtol for every tensor
 * Prints the worst tensor; exit 0 if within tolerance, 1 if not, 2 on errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"

typedef struct {
  hid_t other;
  bool exact;
  double rtol, worst;
  char worst_name[256];
  int tensors, failed;
  const char *root;
} ctx;

static float *read_all(hid_t f, const char *name, hsize_t *n) {
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  if (d < 0) return NULL;
  hid_t s = H5Dget_space(d);
  *n = (hsize_t)H5Sget_simple_extent_npoints(s);
  float *buf = malloc(*n * sizeof(float) + 1);
  if (buf && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    free(buf);
    buf = NULL;
  }
  H5Sclose(s);
  H5Dclose(d);
  return buf;
}

static herr_t visit(hid_t loc, const char *name, const H5O_info_t *info, void *data) {
  ctx *c = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  char full[300];
  snprintf(full, sizeof full, "%s/%s", c->root, name);
  hsize_t na, nb;
  float *a = read_all(loc, name, &na);
  float *b = mn_h5_exists(c->other, full) ? read_all(c->other, full, &nb) : NULL;
  c->tensors++;
  if (!a || !b || na != nb) {
    printf("%s: missing or different size\n", full);
    c->failed++;
  } else {
    double diff = 0, norm = 0;
    bool same = memcmp(a, b, na * sizeof(float)) == 0;
    for (hsize_t i = 0; i < na; i++) {
      diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
      norm += (double)b[i] * b[i];
    }
    double rel = sqrt(diff) / (sqrt(norm) > 0 ? sqrt(norm) : 1.0);
    if (rel > c->worst || c->worst_name[0] == '\0') {
      c->worst = rel;
      snprintf(c->worst_name, sizeof c->worst_name, "%s", full);
    }
    if (c->exact ? !same : !(rel <= c->rtol)) c->failed++;
  }
  free(a);
  free(b);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4 && argc != 5) {
    fprintf(stderr, "usage: compare_params A.h5 B.h5 --exact | --rtol R\n");
    return 2;
  }
  ctx c = {0};
  c.exact = strcmp(argv[3], "--exact") == 0;
  c.rtol = argc == 5 ? atof(argv[4]) : 0.0;
  mn_err err;
  mn_h5_quiet();
  hid_t a = mn_h5_open_read(argv[1], &err);
  if (a >= 0) c.other = mn_h5_open_read(argv[2], &err);
  if (a < 0 || c.other < 0) {
    fprintf(stderr, "compare_params: %s\n", err.msg);
    return 2;
  }
  const char *roots[] = {"/params", "/state"};
  for (int r = 0; r < 2; r++) {
    if (!mn_h5_exists(a, roots[r])) {
      if (r == 0) {
        fprintf(stderr, "compare_params: %s has no /params\n", argv[1]);
        return 2;
      }
      continue;
    }
    c.root = roots[r];
    hid_t g = H5Gopen2(a, roots[r], H5P_DEFAULT);
    H5Ovisit(g, H5_INDEX_NAME, H5_ITER_INC, visit, &c);
    H5Gclose(g);
  }
  printf("compared %d tensors: worst relative difference %.3g (%s); %s\n", c.tensors, c.worst,
         c.worst_name,
         c.failed  ? "MISMATCH"
         : c.exact ? "bit-identical"
                   : "within tolerance");
  H5Fclose(a);
  H5Fclose(c.other);
  return c.failed || c.tensors == 0 ? 1 : 0;
}
