/* convert_synthetic.c: `mpinet convert synthetic`: small generated datasets for tests,
 * examples and benchmarks, a pure function of the seed.
 *
 * blobs:      K Gaussian clusters in F dimensions, well separated (linearly separable).
 * regression: float targets y = tanh(x A) for a random A (K outputs), for MSE. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "h5_writer.h"
#include "rng.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: mpinet convert synthetic -o OUT.h5 [--kind blobs|regression] [--train N]\n"
          "                                [--test N] [--features F] [--classes K] [--seed S]\n"
          "blobs: K well-separated Gaussian clusters (int labels); regression: float targets\n"
          "(n, K) = tanh(x A). Defaults: blobs, 1024 train, 256 test, 16 features, 4 classes.\n");
}

static void generate(int kind, size_t n, int features, int classes, uint64_t seed, uint64_t offset,
                     float *x, int32_t *labels, float *targets) {
  const uint64_t stream = MN_STREAM_DATA;
  for (size_t i = 0; i < n; i++) {
    uint64_t row = offset + i;
    float *xi = x + i * (size_t)features;
    if (kind == 0) {
      int c = (int)mn_rng_below(seed, stream, row, (uint32_t)classes);
      labels[i] = c;
      for (int j = 0; j < features; j++) {
        /* centre of class c: a fixed random point with coordinates in [-3, 3] */
        float centre = 6.0f * mn_rng_uniform(seed, stream + 1, (uint64_t)c * 4096 + j) - 3.0f;
        xi[j] = centre + 0.5f * mn_rng_normal(seed, stream + 2, row * 4096 + (uint64_t)j);
      }
    } else {
      for (int j = 0; j < features; j++)
        xi[j] = mn_rng_normal(seed, stream + 2, row * 4096 + (uint64_t)j);
      for (int k = 0; k < classes; k++) {
        double z = 0.0;
        for (int j = 0; j < features; j++)
          z += xi[j] * mn_rng_normal(seed, stream + 3, (uint64_t)k * 4096 + j) /
               sqrt((double)features);
        targets[i * (size_t)classes + k] = (float)tanh(z);
      }
    }
  }
}

int mn_convert_synthetic_main(int argc, char **argv) {
  static const char *const kinds[] = {"blobs", "regression"};
  const char *out = NULL;
  long train_n = 1024, test_n = 256, features = 16, classes = 4, seed = 1;
  int kind = 0;
  static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                       {"kind", required_argument, 0, 1},
                                       {"train", required_argument, 0, 2},
                                       {"test", required_argument, 0, 3},
                                       {"features", required_argument, 0, 4},
                                       {"classes", required_argument, 0, 5},
                                       {"seed", required_argument, 0, 6},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (c) {
    case 'o': out = optarg; break;
    case 1:
      kind = -1;
      for (int i = 0; i < 2; i++)
        if (strcmp(optarg, kinds[i]) == 0) kind = i;
      if (kind < 0) {
        fprintf(stderr, "mpinet: error: --kind %s: expected blobs or regression\n", optarg);
        return 2;
      }
      break;
    case 2: train_n = atol(optarg); break;
    case 3: test_n = atol(optarg); break;
    case 4: features = atol(optarg); break;
    case 5: classes = atol(optarg); break;
    case 6: seed = atol(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!out || optind != argc || train_n < 1 || test_n < 1 || features < 1 || features > 4096 ||
      classes < (kind == 0 ? 2 : 1) || classes > 4096) {
    fprintf(stderr, "mpinet: error: convert synthetic: missing, extra or out-of-range "
                    "arguments\n");
    usage(stderr);
    return 2;
  }
  mn_err err;
  int rc = 1;
  float *xtr = mn_alloc((size_t)train_n * features, sizeof(float), "x", &err);
  float *xte = mn_alloc((size_t)test_n * features, sizeof(float), "x", &err);
  int32_t *ytr = mn_alloc((size_t)train_n, sizeof(int32_t), "y", &err);
  int32_t *yte = mn_alloc((size_t)test_n, sizeof(int32_t), "y", &err);
  float *ttr = mn_alloc((size_t)train_n * classes, sizeof(float), "y", &err);
  float *tte = mn_alloc((size_t)test_n * classes, sizeof(float), "y", &err);
  if (xtr && xte && ytr && yte && ttr && tte) {
    generate(kind, (size_t)train_n, (int)features, (int)classes, (uint64_t)seed, 0, xtr, ytr, ttr);
    generate(kind, (size_t)test_n, (int)features, (int)classes, (uint64_t)seed, (uint64_t)train_n,
             xte, yte, tte);
    mn_split_data train = {.x = xtr,
                           .rank = 2,
                           .dims = {(size_t)train_n, (size_t)features},
                           .labels = kind == 0 ? ytr : NULL,
                           .targets = ttr,
                           .target_width = (int)classes};
    mn_split_data test = {.x = xte,
                          .rank = 2,
                          .dims = {(size_t)test_n, (size_t)features},
                          .labels = kind == 0 ? yte : NULL,
                          .targets = tte,
                          .target_width = (int)classes};
    char source[128];
    snprintf(source, sizeof source, "synthetic %s, seed %ld", kinds[kind], seed);
    mn_dataset_attrs attrs = {
        .classes = kind == 0 ? (int)classes : 0, .scale = 1.0, .source = source};
    if (mn_dataset_write(out, &train, &test, &attrs, &err) == 0) {
      printf("wrote %s: %s, train %ld x %ld, test %ld, %ld %s\n", out, kinds[kind], train_n,
             features, test_n, classes, kind == 0 ? "classes" : "targets");
      rc = 0;
    }
  }
  if (rc != 0) fprintf(stderr, "mpinet: error: %s\n", err.msg);
  free(xtr), free(xte), free(ytr), free(yte), free(ttr), free(tte);
  return rc;
}
