/* convert_csv.c: `mpinet convert csv`: a numeric CSV -> mpinet HDF5 dataset.
 *
 * One row per sample, comma-separated numbers; a first line with any non-numeric field is a
 * header (then columns may be named). --label-column K makes column K integer class labels
 * (0..classes-1); --target-column K[,K...] makes those columns float regression targets.
 * Every other column is a feature. Rows are shuffled with --seed and the last --test-fraction
 * of them become /test. Features are standardised with the training rows' mean and standard
 * deviation per column (stored in /preprocessing so predictions can be made on new data);
 * --no-standardise keeps them raw. Malformed input is rejected with file, line and column. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "h5_writer.h"
#include "h5util.h"
#include "rng.h"

typedef struct {
  double *values; /* rows * cols */
  size_t rows, cap;
  int cols;
  char **names; /* header, or NULL */
} table;

static void table_free(table *t) {
  free(t->values);
  if (t->names)
    for (int i = 0; i < t->cols; i++) free(t->names[i]);
  free(t->names);
}

/* Splits a line in place at commas; returns the field count (up to max). */
static int split(char *line, char **fields, int max) {
  int n = 0;
  char *p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t') p++;
    if (n < max) fields[n] = p;
    n++;
    char *comma = strchr(p, ',');
    char *end = comma ? comma : p + strlen(p);
    char *q = end;
    while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r' || q[-1] == '\n')) q--;
    *q = '\0';
    if (!comma) break;
    p = comma + 1;
  }
  return n;
}

static int parse_number(const char *s, double *out) {
  char *end;
  errno = 0;
  *out = strtod(s, &end);
  return s[0] != '\0' && *end == '\0' && errno == 0 ? 0 : -1;
}

static int read_table(const char *path, table *t, mn_err *err) {
  memset(t, 0, sizeof *t);
  FILE *f = fopen(path, "r");
  if (!f) return mn_fail(err, "%s: cannot open (%s)", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  long lineno = 0;
  char *fields[4096];
  int rc = -1;
  while (getline(&line, &cap, f) != -1) {
    lineno++;
    if (strspn(line, " \t\r\n") == strlen(line)) continue; /* blank */
    int n = split(line, fields, 4096);
    if (n > 4096) {
      mn_fail(err, "%s:%ld: more than 4096 columns", path, lineno);
      goto out;
    }
    if (t->cols == 0) {
      t->cols = n;
      double v;
      bool header = false;
      for (int i = 0; i < n; i++) header |= parse_number(fields[i], &v) != 0;
      if (header) {
        t->names = calloc((size_t)n, sizeof *t->names);
        for (int i = 0; t->names && i < n; i++) t->names[i] = strdup(fields[i]);
        continue;
      }
    }
    if (n != t->cols) {
      mn_fail(err, "%s:%ld: %d fields, but the first row has %d", path, lineno, n, t->cols);
      goto out;
    }
    if (t->rows == t->cap) {
      t->cap = t->cap ? t->cap * 2 : 1024;
      double *v = realloc(t->values, t->cap * (size_t)t->cols * sizeof(double));
      if (!v) {
        mn_fail(err, "%s: out of memory", path);
        goto out;
      }
      t->values = v;
    }
    for (int i = 0; i < n; i++) {
      double *v = &t->values[t->rows * (size_t)t->cols + i];
      if (parse_number(fields[i], v) != 0 || !isfinite(*v)) {
        mn_fail(err, "%s:%ld: column %d: '%s' is not a finite number", path, lineno, i + 1,
                fields[i]);
        goto out;
      }
    }
    t->rows++;
  }
  if (t->rows < 2) {
    mn_fail(err, "%s: needs at least 2 data rows, has %zu", path, t->rows);
    goto out;
  }
  rc = 0;
out:
  free(line);
  fclose(f);
  return rc;
}

/* Resolves a column given as a 0-based index or a header name. */
static int column_index(const table *t, const char *spec, const char *path, mn_err *err) {
  char *end;
  long v = strtol(spec, &end, 10);
  if (*spec && *end == '\0') {
    if (v < 0 || v >= t->cols)
      return mn_fail(err, "%s: column %ld does not exist (columns 0..%d)", path, v, t->cols - 1);
    return (int)v;
  }
  for (int i = 0; t->names && i < t->cols; i++)
    if (strcmp(t->names[i], spec) == 0) return i;
  return mn_fail(err, "%s: no column named '%s'%s", path, spec,
                 t->names ? "" : " (the file has no header line)");
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: mpinet convert csv --input F.csv (--label-column K | --target-column K[,K..])\n"
          "                          -o OUT.h5 [--test-fraction P] [--seed S]\n"
          "                          [--no-standardise]\n"
          "Numeric CSV, header line optional; K is a 0-based index or a header name.\n"
          "Labels must be integers 0..classes-1; targets are float regression targets.\n"
          "Rows are shuffled (seed S, default 1); the last P (default 0.2) become /test.\n"
          "Features are standardised with the training rows' per-column mean and std.\n");
}

int mn_convert_csv_main(int argc, char **argv) {
  const char *input = NULL, *out = NULL, *label = NULL, *targets = NULL;
  double test_fraction = 0.2;
  long seed = 1;
  int standardise = 1;
  static const struct option opts[] = {{"input", required_argument, 0, 'i'},
                                       {"output", required_argument, 0, 'o'},
                                       {"label-column", required_argument, 0, 1},
                                       {"target-column", required_argument, 0, 2},
                                       {"test-fraction", required_argument, 0, 3},
                                       {"seed", required_argument, 0, 4},
                                       {"no-standardise", no_argument, 0, 5},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "i:o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'i': input = optarg; break;
    case 'o': out = optarg; break;
    case 1: label = optarg; break;
    case 2: targets = optarg; break;
    case 3: test_fraction = atof(optarg); break;
    case 4: seed = atol(optarg); break;
    case 5: standardise = 0; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!input || !out || optind != argc || !label == !targets || !(test_fraction > 0.0) ||
      !(test_fraction < 1.0)) {
    fprintf(stderr, "mpinet: error: convert csv: need --input, -o and exactly one of "
                    "--label-column / --target-column; 0 < --test-fraction < 1\n");
    usage(stderr);
    return 2;
  }
  mn_err err;
  table t;
  int rc = 1;
  bool *is_target = NULL;
  float *x = NULL, *ty = NULL;
  int32_t *labels = NULL;
  uint32_t *order = NULL;
  double *mean = NULL, *sd = NULL;
  if (read_table(input, &t, &err) != 0) goto out;
  is_target = calloc((size_t)t.cols, sizeof(bool));
  int nt = 0, label_col = -1;
  if (label) {
    if ((label_col = column_index(&t, label, input, &err)) < 0) goto out;
    is_target[label_col] = true;
    nt = 1;
  } else {
    char *list = strdup(targets), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      int k = column_index(&t, tok, input, &err);
      if (k < 0) {
        free(list);
        goto out;
      }
      nt += !is_target[k];
      is_target[k] = true;
    }
    free(list);
  }
  const int nf = t.cols - nt;
  if (nf < 1) {
    mn_fail(&err, "%s: no feature columns left", input);
    goto out;
  }
  const size_t n = t.rows, ntest = (size_t)ceil((double)n * test_fraction), ntrain = n - ntest;
  if (ntrain < 1 || ntest < 1) {
    mn_fail(&err, "%s: %zu rows cannot be split %g for testing", input, n, test_fraction);
    goto out;
  }
  x = malloc(n * (size_t)nf * sizeof(float));
  ty = malloc(n * (size_t)nt * sizeof(float));
  labels = malloc(n * sizeof(int32_t));
  order = malloc(n * sizeof(uint32_t));
  mean = calloc((size_t)nf, sizeof(double));
  sd = calloc((size_t)nf, sizeof(double));
  if (!x || !ty || !labels || !order || !mean || !sd) {
    mn_fail(&err, "out of memory");
    goto out;
  }
  mn_rng_permutation(order, (uint32_t)n, (uint64_t)seed, MN_STREAM_DATA, 0);
  int classes = 0;
  for (size_t r = 0; r < n; r++) {
    const double *row = t.values + (size_t)order[r] * t.cols;
    int fi = 0, ti = 0;
    for (int col = 0; col < t.cols; col++) {
      if (!is_target[col]) {
        x[r * nf + fi++] = (float)row[col];
      } else if (label) {
        double v = row[col];
        if (v != floor(v) || v < 0 || v > 1e6) {
          mn_fail(&err, "%s: data row %u: label %g is not an integer in 0..1e6", input,
                  order[r] + 1, v);
          goto out;
        }
        labels[r] = (int32_t)v;
        if (labels[r] + 1 > classes) classes = labels[r] + 1;
      } else {
        ty[r * nt + ti++] = (float)row[col];
      }
    }
  }
  if (label && classes < 2) classes = 2;
  if (standardise) {
    for (size_t r = 0; r < ntrain; r++)
      for (int j = 0; j < nf; j++) mean[j] += x[r * nf + j];
    for (int j = 0; j < nf; j++) mean[j] /= (double)ntrain;
    for (size_t r = 0; r < ntrain; r++)
      for (int j = 0; j < nf; j++) sd[j] += (x[r * nf + j] - mean[j]) * (x[r * nf + j] - mean[j]);
    for (int j = 0; j < nf; j++) {
      sd[j] = sqrt(sd[j] / (double)ntrain);
      if (sd[j] < 1e-12) sd[j] = 1.0;
    }
    for (size_t r = 0; r < n; r++)
      for (int j = 0; j < nf; j++) x[r * nf + j] = (float)((x[r * nf + j] - mean[j]) / sd[j]);
  }
  mn_split_data train = {.x = x,
                         .rank = 2,
                         .dims = {ntrain, (size_t)nf},
                         .labels = label ? labels : NULL,
                         .targets = ty,
                         .target_width = nt};
  mn_split_data test = {.x = x + ntrain * nf,
                        .rank = 2,
                        .dims = {ntest, (size_t)nf},
                        .labels = label ? labels + ntrain : NULL,
                        .targets = ty + ntrain * nt,
                        .target_width = nt};
  char source[1100];
  snprintf(source, sizeof source, "csv: %s", input);
  mn_dataset_attrs attrs = {.classes = label ? classes : 0, .scale = 1.0, .source = source};
  if (mn_dataset_write(out, &train, &test, &attrs, &err) != 0) goto out;
  if (standardise) {
    hid_t f = H5Fopen(out, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "preprocessing", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    size_t dims[1] = {(size_t)nf};
    int bad = mn_h5_write_array(g, "feature_mean", H5T_NATIVE_DOUBLE, 1, dims, mean, false) |
              mn_h5_write_array(g, "feature_std", H5T_NATIVE_DOUBLE, 1, dims, sd, false);
    H5Gclose(g);
    if (H5Fclose(f) < 0 || bad) {
      mn_fail(&err, "%s: cannot add /preprocessing", out);
      goto out;
    }
  }
  printf("wrote %s: %zu train + %zu test rows, %d features, ", out, ntrain, ntest, nf);
  if (label) {
    printf("%d classes\n", classes);
  } else {
    double tm = 0, tv = 0;
    for (size_t r = ntrain; r < n; r++) tm += ty[r * nt];
    tm /= (double)ntest;
    for (size_t r = ntrain; r < n; r++) tv += (ty[r * nt] - tm) * (ty[r * nt] - tm);
    printf("%d targets (variance of the first over the test rows: %.6g)\n", nt, tv / (double)ntest);
  }
  rc = 0;
out:
  if (rc != 0) fprintf(stderr, "mpinet: error: %s\n", err.msg);
  table_free(&t);
  free(is_target), free(x), free(ty), free(labels), free(order), free(mean), free(sd);
  return rc;
}
