/* convert_synthetic.c: `mpinet convert synthetic`: small generated datasets for tests,
 * examples and benchmarks, a pure function of the seed.
 *
 * blobs:      K Gaussian clusters in F dimensions, well separated (linearly separable).
 * regression: float targets y = tanh(x A) for a random A (K outputs), for MSE.
 * sequence:   (n, T, F) sequences; class c is a noisy sine of frequency 0.3 + 0.4 c (radians
 *             per step) with a random phase per sample and feature: only a model that looks
 *             across time steps (RNN, LSTM) can tell the classes apart. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "h5_writer.h"
#include "rng.h"

enum { BLOBS, REGRESSION, SEQUENCE };
static const char *const kinds[] = {"blobs", "regression", "sequence", NULL};

typedef struct {
  int kind, features, classes, steps;
  uint64_t seed;
} spec;

static void usage(FILE *out) {
  fprintf(out,
          "usage: mpinet convert synthetic -o OUT.h5 [--kind blobs|regression|sequence]\n"
          "          [--train N] [--test N] [--features F] [--classes K] [--steps T] [--seed S]\n"
          "blobs: K well-separated Gaussian clusters (int labels); regression: float targets\n"
          "(n, K) = tanh(x A); sequence: (n, T, F) noisy sines whose frequency is the class.\n"
          "Defaults: blobs, 1024 train, 256 test, 16 features, 4 classes, 16 steps, seed 1.\n");
}

/* Row `row` (a global index: test rows follow the training rows) of the dataset. */
static void generate_row(const spec *s, uint64_t row, float *x, int32_t *label, float *target) {
  const uint64_t stream = MN_STREAM_DATA;
  const int f = s->features;
  if (s->kind == BLOBS) {
    int c = (int)mn_rng_below(s->seed, stream, row, (uint32_t)s->classes);
    *label = c;
    for (int j = 0; j < f; j++) {
      /* centre of class c: a fixed random point with coordinates in [-3, 3] */
      float centre = 6.0f * mn_rng_uniform(s->seed, stream + 1, (uint64_t)c * 4096 + j) - 3.0f;
      x[j] = centre + 0.5f * mn_rng_normal(s->seed, stream + 2, row * 4096 + (uint64_t)j);
    }
  } else if (s->kind == REGRESSION) {
    for (int j = 0; j < f; j++) x[j] = mn_rng_normal(s->seed, stream + 2, row * 4096 + (uint64_t)j);
    for (int k = 0; k < s->classes; k++) {
      double z = 0.0;
      for (int j = 0; j < f; j++)
        z += x[j] * mn_rng_normal(s->seed, stream + 3, (uint64_t)k * 4096 + j) / sqrt((double)f);
      target[k] = (float)tanh(z);
    }
  } else {
    int c = (int)mn_rng_below(s->seed, stream, row, (uint32_t)s->classes);
    *label = c;
    const double omega = 0.3 + 0.4 * c;
    for (int j = 0; j < f; j++) {
      double phase = 6.283185307179586 * mn_rng_uniform(s->seed, stream + 4, row * 4096 + j);
      for (int t = 0; t < s->steps; t++)
        x[t * f + j] = (float)sin(omega * t + phase) +
                       0.3f * mn_rng_normal(s->seed, stream + 5, (row * 4096 + j) * 4096 + t);
    }
  }
}

int mn_convert_synthetic_main(int argc, char **argv) {
  const char *out = NULL;
  long train_n = 1024, test_n = 256, features = 16, classes = 4, steps = 16, seed = 1;
  int kind = BLOBS;
  static const struct option opts[] = {
      {"output", required_argument, 0, 'o'}, {"kind", required_argument, 0, 1},
      {"train", required_argument, 0, 2},    {"test", required_argument, 0, 3},
      {"features", required_argument, 0, 4}, {"classes", required_argument, 0, 5},
      {"seed", required_argument, 0, 6},     {"steps", required_argument, 0, 7},
      {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'o': out = optarg; break;
    case 1:
      kind = -1;
      for (int i = 0; kinds[i]; i++)
        if (strcmp(optarg, kinds[i]) == 0) kind = i;
      if (kind < 0) {
        fprintf(stderr, "mpinet: error: --kind %s: expected blobs, regression or sequence\n",
                optarg);
        return 2;
      }
      break;
    case 2: train_n = atol(optarg); break;
    case 3: test_n = atol(optarg); break;
    case 4: features = atol(optarg); break;
    case 5: classes = atol(optarg); break;
    case 6: seed = atol(optarg); break;
    case 7: steps = atol(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!out || optind != argc || train_n < 1 || test_n < 1 || train_n > (1L << 28) ||
      test_n > (1L << 28) || features < 1 || features > 4096 ||
      classes < (kind == REGRESSION ? 1 : 2) || classes > 4096 || steps < 1 || steps > 4096) {
    fprintf(stderr, "mpinet: error: convert synthetic: missing, extra or out-of-range "
                    "arguments\n");
    usage(stderr);
    return 2;
  }
  const spec s = {kind, (int)features, (int)classes, (int)steps, (uint64_t)seed};
  const size_t row_len = (size_t)features * (kind == SEQUENCE ? (size_t)steps : 1);
  const size_t n = (size_t)(train_n + test_n);
  mn_err err;
  int rc = 1;
  float *x = mn_alloc(n, row_len * sizeof(float), "x", &err);
  int32_t *y = mn_alloc(n, sizeof(int32_t), "y", &err);
  float *t = mn_alloc(n, (size_t)classes * sizeof(float), "y", &err);
  if (x && y && t) {
    for (size_t i = 0; i < n; i++) generate_row(&s, i, x + i * row_len, y + i, t + i * classes);
    const bool labels = kind != REGRESSION;
    mn_split_data train = {.x = x,
                           .rank = 2,
                           .dims = {(size_t)train_n, (size_t)features},
                           .labels = labels ? y : NULL,
                           .targets = t,
                           .target_width = (int)classes};
    mn_split_data test = train;
    test.x = x + (size_t)train_n * row_len;
    test.dims[0] = (size_t)test_n;
    test.labels = labels ? y + train_n : NULL;
    test.targets = t + (size_t)train_n * classes;
    if (kind == SEQUENCE) {
      train.rank = test.rank = 3;
      train.dims[1] = test.dims[1] = (size_t)steps;
      train.dims[2] = test.dims[2] = (size_t)features;
    }
    char source[128];
    snprintf(source, sizeof source, "synthetic %s, seed %ld", kinds[kind], seed);
    mn_dataset_attrs attrs = {.classes = labels ? (int)classes : 0, .scale = 1.0, .source = source};
    if (mn_dataset_write(out, &train, &test, &attrs, &err) == 0) {
      printf("wrote %s: %s, train %ld, test %ld, sample (", out, kinds[kind], train_n, test_n);
      if (kind == SEQUENCE) printf("%ld, ", steps);
      printf("%ld), %ld %s\n", features, classes, labels ? "classes" : "targets");
      rc = 0;
    }
  }
  if (rc != 0) fprintf(stderr, "mpinet: error: %s\n", err.msg);
  free(x), free(y), free(t);
  return rc;
}
